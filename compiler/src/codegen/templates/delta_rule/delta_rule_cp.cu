
#ifndef MODELC_DELTA_CP_WS
#define MODELC_DELTA_CP_WS
/* The chunk-parallel form's workspace, for N = B * Hv * NC chunks (NC = ceil(T / 64)); chunk
 * n = (b * Hv + hv) * NC + c. f32 first, then bf16; every region starts 16-byte aligned (Dk and
 * Dv are multiples of 32). Rows of a partial last chunk past T hold zeros (their inputs are). */
struct DcpWs {
    float* egl; /* [N][DK]    e^G_last (the chunk's total decay)                       */
    bf16* qg;   /* [N][C][DK] q e^G (normalised, scaled)                               */
    bf16* kh;   /* [N][C][DK] k e^(G_last - G)                                         */
    bf16* w;    /* [N][C][DK] W = (I + L)^-1 diag(beta) (k e^G)                        */
    bf16* u;    /* [N][C][DV] U = (I + L)^-1 diag(beta) v                              */
    bf16* aq;   /* [N][C][C]  A_qk, zero above the diagonal                            */
    bf16* hs;   /* [N][DK][DV] the state entering the chunk                            */
    bf16* vn;   /* [N][C][DV] v_new = U - W h                                          */
};
template <int C, int DK, int DV>
__device__ __forceinline__ DcpWs dcp_ws(float* base, long n) {
    DcpWs s;
    s.egl = base;
    s.qg = reinterpret_cast<bf16*>(base + n * DK);
    s.kh = s.qg + n * C * DK;
    s.w = s.kh + n * C * DK;
    s.u = s.w + n * C * DK;
    s.aq = s.u + n * C * DV;
    s.hs = s.aq + n * C * C;
    s.vn = s.hs + n * DK * DV;
    return s;
}

/* The sum of squares of 8 bf16 (a 16-byte piece of a row). */
__device__ __forceinline__ float dcp_sumsq8(const uint4 v) {
    const unsigned u[4] = {v.x, v.y, v.z, v.w};
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const float lo = __uint_as_float(u[i] << 16), hi = __uint_as_float(u[i] & 0xffff0000u);
        s = fmaf(lo, lo, s);
        s = fmaf(hi, hi, s);
    }
    return s;
}

/* The C x DV bf16 tile Os (rows of `ld`) to the first `n` rows of a global matrix (row stride
 * `stride`): whole 16-byte pieces of rows where the rows are 16-byte aligned, element by element
 * otherwise. */
template <int C, int DV, int NT>
__device__ __forceinline__ void dcp_store_rows(bf16* dst, long stride, const bf16* Os, int ld, int n, int tid) {
    const bool vec = (reinterpret_cast<unsigned long long>(dst) & 15) == 0 && stride % 8 == 0;
    for (int e = tid; e < C * (DV / 8); e += NT) {
        const int t = e / (DV / 8), x = (e % (DV / 8)) * 8;
        if (t >= n) continue;
        if (vec) {
            *reinterpret_cast<uint4*>(dst + t * stride + x) = *reinterpret_cast<const uint4*>(Os + t * ld + x);
        } else {
#pragma unroll
            for (int y = 0; y < 8; ++y) dst[t * stride + x + y] = Os[t * ld + x + y];
        }
    }
}
#endif

/*
 * delta_rule_cp_prep_@HASH@: pass 1 of 3, one block per (chunk, value head, batch), no state.
 *   Fuses the q/k l2 norm and scale, the in-chunk cumsum of g (log2 units), the decayed q and k
 *   rows, A_qk and L (16-row block i against Kc_i, reference r = 16 i, fla's chunk_kda; a
 *   diagonal block whose decay span may pass 2^63 is summed exactly instead), the UT solve
 *   (I + L)^-1 in f32 and W, U on tensor cores. Writes egl, qg, kh, w, u, aq of the workspace.
 *   The key channels go in passes of KH (64 or 32) so that two blocks fit an SM (three for the
 *   Compact form): per pass the operands of KH channels are staged and the A_qk / L products
 *   accumulate in registers, the ten 16x16 blocks of each lower triangle spread over four warps
 *   (at most three a warp: 24 accumulator registers, and no warp waits on one with four).
 * Grid (NC, Hv, B), block 256 threads = 4 row tiles x 2 column groups of warps,
 *   dynamic smem = the prep part of delta_rule_cp_smem().
 */
extern "C" __global__ void __launch_bounds__(256, 2) delta_rule_cp_prep_@HASH@(
    @ARGS@)
{
@CONSTS@    (void)VTAIL; (void)state_in; (void)state_out; (void)o; (void)o_stride;
    constexpr int C = 64;
    constexpr int NW = 8;
    constexpr int NT = 32 * NW;
    constexpr int KH = DK % 64 == 0 ? 64 : 32; /* key channels per pass                       */
    constexpr int NPASS = DK / KH;
    constexpr int NTK = DK / 16;          /* n tiles per warp of W (DK / 2 columns)             */
    constexpr int NTV = DV / 16;          /* n tiles per warp of U (DV / 2 columns)             */
    constexpr int KP = DK + 8;
    constexpr int HP = KH + 8;
    constexpr int VP = DV + 8;
    constexpr int AP = C + 8;
    constexpr int FP = C + 4;
    constexpr int NG = PER_CHANNEL ? C * KH : 8 * C;
    constexpr float LOG2E = 1.4426950408889634f;
    constexpr float SPAN_MAX = 64.0f;     /* largest log2 growth of a diagonal-block factor     */
    constexpr bool VEC_NORM = 32 % (DK / 8) == 0; /* step 0's rows as 16-byte pieces (DK 32 .. 256) */
    extern __shared__ __align__(16) unsigned char smem_raw[];
    /* kept through the block */
    bf16* Kb = reinterpret_cast<bf16*>(smem_raw);      /* [C][KP] k e^G                      */
    bf16* AQ = Kb + C * KP;                            /* [C][AP] A_qk                       */
    float* Lf = reinterpret_cast<float*>(AQ + C * AP); /* [C][FP] L                          */
    float* nq = Lf + C * FP;                           /* [C] q row scale                    */
    float* nk = nq + C;                                /* [C] k row scale                    */
    float* bs = nk + C;                                /* [C] beta                           */
    int* flags = reinterpret_cast<int*>(bs + C);       /* diagonal blocks summed exactly     */
    unsigned char* uni = reinterpret_cast<unsigned char*>(flags + 4);
    /* phase A, per pass of KH channels, then the exact diagonal-block sums across the passes */
    float* Gs = reinterpret_cast<float*>(uni);         /* [C][KH] or [C]: g, then log2 cumsum */
    float* Ex = Gs + C;                                /* scalar gate: [7][C] step 4's factors */
    float* Gb = Gs + NG;                               /* [4][KH] per-block sums of g        */
    bf16* Qr = reinterpret_cast<bf16*>(Gb + 4 * KH);   /* [C][HP] q, then q e^(G - G_r)      */
    bf16* Kr = Qr + C * HP;                            /* [C][HP] k, then k e^(G - G_r)      */
    bf16* Kc = Kr + C * HP;                            /* [160][HP] k e^(G_r - G), per block */
    float* Xq = reinterpret_cast<float*>(Kc + 160 * HP); /* [4][16][16] exact A_qk blocks    */
    float* Xk = Xq + 4 * 256;                          /* [4][16][16] exact L blocks         */
    /* phase B, over phase A (after the exact sums are used) */
    float* Af = reinterpret_cast<float*>(uni);         /* [C][FP] (I + L)^-1                 */
    float* Tf = Af + C * FP;                           /* [C][FP] scratch                    */
    bf16* Ab = reinterpret_cast<bf16*>(Tf + C * FP);   /* [C][AP] (I + L)^-1 diag(beta)      */
    bf16* Vb = Ab + C * AP;                            /* [C][VP] v                          */

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int mr = warp & 3, cg = warp >> 2;
    const int r4 = lane >> 2, c4 = (lane & 3) * 2;
    const int NC = gridDim.x;
    const int c0 = blockIdx.x * C;
    const int hv = blockIdx.y;
    const long b = blockIdx.z;
    const int hk = hv / RATIO;
    const int cn = min(C, T - c0);
    const long row0 = b * T + c0;
    const long ci = (b * HV + hv) * NC + blockIdx.x;
    const DcpWs ws = dcp_ws<C, DK, DV>(ws_raw, (long)gridDim.z * HV * NC);
    const bool vec_qk = ((reinterpret_cast<unsigned long long>(q) | reinterpret_cast<unsigned long long>(k)) & 15) == 0 &&
                        q_stride % 8 == 0 && k_stride % 8 == 0;
    const bool vec_g = (reinterpret_cast<unsigned long long>(g) & 15) == 0;
    const bool vec_v = (reinterpret_cast<unsigned long long>(v) & 15) == 0 && v_stride % 8 == 0;
#define GAT(t, d) (PER_CHANNEL ? Gs[(t) * KH + (d)] : Gs[t])
    /* stages the q, k, g channels of pass p (rows past T are zero); wait with dtc_cp_wait */
    auto stage_pass = [&](int p) {
        const int d0 = p * KH;
        /* the thread index through an empty asm: ptxas then recomputes each pass's copy offsets
         * instead of keeping them in registers across the pass loop (at 80 registers they spilled) */
        int ti = threadIdx.x;
        asm volatile("" : "+r"(ti));
        dtc_stage<bf16, C, KH, NT>(Qr, HP, q + row0 * q_stride + hk * DK + d0, q_stride, cn, vec_qk, ti);
        dtc_stage<bf16, C, KH, NT>(Kr, HP, k + row0 * k_stride + hk * DK + d0, k_stride, cn, vec_qk, ti);
        if (PER_CHANNEL)
            dtc_stage<float, C, KH, NT>(Gs, KH, g + row0 * HV * DK + hv * DK + d0, (long)HV * DK, cn, vec_g, ti);
        else if (ti < C)
            Gs[ti] = ti < cn ? g[(row0 + ti) * HV + hv] : 0.0f;
    };

    /* 0. beta, the row scales (l2 norms over all DK channels, read from global memory) and the
     *    diagonal blocks to sum exactly: those whose decay span, -sum of g over rows 16 i + 1 ..
     *    16 i + 15 in log2 units, passes SPAN_MAX - 1 in some channel (the margin covers the
     *    rounding difference to the cumsum below, so no factor of Kc is ever clamped). */
    /* the first pass's operands are in flight (cp.async) during step 0 */
    stage_pass(0);
    if (tid == 0) flags[0] = 0;
    if (tid < C) bs[tid] = tid < cn ? beta[(row0 + tid) * HV + hv] : 0.0f;
    if (VEC_NORM && vec_qk) {
        /* warp w: rows w, w + NW, .. as 16-byte pieces, PR lanes a row (whole sectors, an eighth
         * of the load instructions of the element form below); every load issued before the
         * sums; a row's squares summed over its PR lanes */
        constexpr int PR = DK / 8;
        constexpr int NJ = (C / NW) * PR / 32;
        float sq[NJ], sk[NJ];
#pragma unroll
        for (int j = 0; j < NJ; ++j) {
            const int pi = 32 * j + lane, t = warp + NW * (pi / PR), x = (pi % PR) * 8;
            uint4 qa = make_uint4(0u, 0u, 0u, 0u), ka = qa;
            if (t < cn) {
                qa = __ldg(reinterpret_cast<const uint4*>(q + (row0 + t) * q_stride + hk * DK + x));
                ka = __ldg(reinterpret_cast<const uint4*>(k + (row0 + t) * k_stride + hk * DK + x));
            }
            sq[j] = dcp_sumsq8(qa);
            sk[j] = dcp_sumsq8(ka);
        }
#pragma unroll
        for (int j = 0; j < NJ; ++j) {
            float a = sq[j], bk = sk[j];
#pragma unroll
            for (int o = PR / 2; o > 0; o >>= 1) {
                a += __shfl_xor_sync(0xffffffffu, a, o);
                bk += __shfl_xor_sync(0xffffffffu, bk, o);
            }
            const int pi = 32 * j + lane, t = warp + NW * (pi / PR);
            if (pi % PR == 0) {
                nq[t] = L2NORM ? SCALE * rsqrtf(a + 1e-6f) : SCALE;
                nk[t] = L2NORM ? rsqrtf(bk + 1e-6f) : 1.0f;
            }
        }
    } else {
        /* warp w: rows w, w + NW, ..; every load issued before the sums (unrolled) */
        float sq[C / NW], sk[C / NW];
#pragma unroll
        for (int r = 0; r < C / NW; ++r) {
            const int t = warp + NW * r;
            sq[r] = 0.0f;
            sk[r] = 0.0f;
#pragma unroll
            for (int d = lane; d < DK; d += 32) {
                const float qv = t < cn ? bf2f(q[(row0 + t) * q_stride + hk * DK + d]) : 0.0f;
                const float kv = t < cn ? bf2f(k[(row0 + t) * k_stride + hk * DK + d]) : 0.0f;
                sq[r] += qv * qv;
                sk[r] += kv * kv;
            }
        }
#pragma unroll
        for (int r = 0; r < C / NW; ++r) {
            const int t = warp + NW * r;
            const float a = warp_sum(sq[r]), bk = warp_sum(sk[r]);
            if (lane == 0) {
                nq[t] = L2NORM ? SCALE * rsqrtf(a + 1e-6f) : SCALE;
                nk[t] = L2NORM ? rsqrtf(bk + 1e-6f) : 1.0f;
            }
        }
    }
    __syncthreads(); /* flags[0] = 0 before any atomicOr */
    for (int e = tid; e < 4 * (PER_CHANNEL ? DK : 1); e += NT) {
        const int i = PER_CHANNEL ? e / DK : e, d = PER_CHANNEL ? e % DK : 0;
        float span = 0.0f;
#pragma unroll
        for (int r = 1; r < 16; ++r) {
            const int t = 16 * i + r;
            if (t < cn)
                span -= (PER_CHANNEL ? g[(row0 + t) * HV * DK + hv * DK + d] : g[(row0 + t) * HV + hv]) * LOG2E;
        }
        if (span > SPAN_MAX - 1.0f) atomicOr(flags, 1 << i);
    }
    __syncthreads();
    const int wide = flags[0];

    /* A_qk (warps 0..3) or L (warps 4..7), accumulated over the passes: the ten 16x16 blocks of
     * the lower triangle, at most three a warp (slot z of warp j: row block SLOT_RB, column
     * block SLOT_CB; warp 3 has one), two n tiles a block. */
    const bool isq = warp < 4;
    const int sj = warp & 3, nslot = sj == 3 ? 1 : 3;
    /* (j, z) -> (3,0) (3,1) (3,2) | (3,3) (1,0) (1,1) | (2,0) (2,1) (2,2) | (0,0) */
#define SLOT_RB(z) ((0x0222113333ull >> (4 * (3 * sj + (z)))) & 3)
#define SLOT_CB(z) ((0x0210103210ull >> (4 * (3 * sj + (z)))) & 3)
    float pacc[6][4];
#pragma unroll
    for (int n = 0; n < 6; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e) pacc[n][e] = 0.0f;

#pragma unroll 1
    for (int pass = 0; pass < NPASS; ++pass) {
        const int d0 = pass * KH;
        /* 1. this pass's q, k, g channels (the first pass's were issued before step 0) */
        if (pass > 0) stage_pass(pass);
        dtc_cp_wait();
        __syncthreads();
        /* 2. the in-chunk cumulative decay in log2 units: per 16-row block, then the offsets */
        if (PER_CHANNEL) {
            /* thread (i, d): block i's running sums of channel d, then (blocks past the first)
             * the sum of the earlier blocks' totals added once per row */
            static_assert(4 * KH <= NT, "a thread per (block, channel)");
            const int i = tid / KH, d = tid % KH;
            if (tid < 4 * KH) {
                float s = 0.0f;
#pragma unroll
                for (int r = 0; r < 16; ++r) {
                    s += Gs[(16 * i + r) * KH + d] * LOG2E;
                    Gs[(16 * i + r) * KH + d] = s;
                }
                Gb[i * KH + d] = s;
            }
            __syncthreads();
            if (tid < 4 * KH && i > 0) {
                float off = 0.0f;
                for (int j = 0; j < i; ++j) off += Gb[j * KH + d];
#pragma unroll
                for (int r = 0; r < 16; ++r) Gs[(16 * i + r) * KH + d] += off;
            }
        } else if (warp == 0) {
            /* scan of 64 scalars: two per lane, then a shuffle scan of the pair sums */
            const float a0 = Gs[2 * lane] * LOG2E, a1 = Gs[2 * lane + 1] * LOG2E;
            float s = a0 + a1;
#pragma unroll
            for (int o2 = 1; o2 < 32; o2 <<= 1) {
                const float y = __shfl_up_sync(0xffffffffu, s, o2);
                if (lane >= o2) s += y;
            }
            Gs[2 * lane] = s - a1;
            Gs[2 * lane + 1] = s;
            __syncwarp();
            /* a scalar gate's factors of step 4 depend on the row only: once per row here */
#pragma unroll
            for (int x = 0; x < 2; ++x) {
                const int t = 2 * lane + x, i = t >> 4;
                const float gt = Gs[t];
                Ex[t] = exp2f(gt - Gs[16 * i]);
                Ex[C + t] = exp2f(gt);
                Ex[2 * C + t] = exp2f(Gs[C - 1] - gt);
#pragma unroll
                for (int ii = 0; ii < 4; ++ii)
                    if (ii >= i) {
                        const float xx = Gs[16 * ii] - gt;
                        Ex[(3 + ii) * C + t] = exp2f(ii == i ? fminf(xx, SPAN_MAX) : xx);
                    }
            }
        }
        __syncthreads();
        /* 3. the flagged diagonal blocks, exactly, from the staged q and k (rare) */
        if (wide) {
            const int a = tid >> 4, cc = tid & 15;
            for (int i = 0; i < 4; ++i) {
                if (!((wide >> i) & 1) || cc > a) continue;
                const int t = 16 * i + a, s = 16 * i + cc;
                float lq = 0.0f, lk = 0.0f;
                for (int d = 0; d < KH; ++d) {
                    const float e = exp2f(GAT(t, d) - GAT(s, d)) * bf2f(Kr[s * HP + d]) * nk[s];
                    lq = fmaf(bf2f(Qr[t * HP + d]) * nq[t], e, lq);
                    lk = fmaf(bf2f(Kr[t * HP + d]) * nk[t], e, lk);
                }
                Xq[i * 256 + tid] = (pass ? Xq[i * 256 + tid] : 0.0f) + lq;
                Xk[i * 256 + tid] = (pass ? Xk[i * 256 + tid] : 0.0f) + lk;
            }
            __syncthreads();
        }
        /* 4. bf16 operands: in place over the staged q and k (the intra-chunk products), k e^G
         *    for W, and straight to the workspace q e^G, k e^(G_last - G) and e^G_last. Two
         *    channels a thread. Every factor is e^x with x <= 0 except on the diagonal blocks
         *    of Kc (x < SPAN_MAX; the clamp only touches flagged blocks, recomputed above). */
        {
            bf16* qg = ws.qg + ci * C * DK + d0;
            bf16* kh = ws.kh + ci * C * DK + d0;
            for (int e = tid; e < C * KH / 2; e += NT) {
                const int t = e / (KH / 2), d = (e % (KH / 2)) * 2, i = t >> 4;
                float qo[2], ko[2], qq[2], kq[2], kb[2];
#pragma unroll
                for (int x = 0; x < 2; ++x) {
                    const float qv = bf2f(Qr[t * HP + d + x]) * nq[t];
                    const float kv = bf2f(Kr[t * HP + d + x]) * nk[t];
                    const float gt = GAT(t, d + x);
                    const float er = PER_CHANNEL ? exp2f(gt - GAT(16 * i, d + x)) : Ex[t];
                    const float eg = PER_CHANNEL ? exp2f(gt) : Ex[C + t];
                    qq[x] = qv * er;
                    kq[x] = kv * er;
                    qo[x] = qv * eg;
                    kb[x] = kv * eg;
                    ko[x] = kv * (PER_CHANNEL ? exp2f(GAT(C - 1, d + x) - gt) : Ex[2 * C + t]);
#pragma unroll
                    for (int ii = 0; ii < 4; ++ii)
                        if (ii >= i) {
                            const float xx = GAT(16 * ii, d + x) - gt;
                            const float f = PER_CHANNEL ? exp2f(ii == i ? fminf(xx, SPAN_MAX) : xx) : Ex[(3 + ii) * C + t];
                            Kc[(8 * ii * (ii + 1) + t) * HP + d + x] = f2bf(kv * f);
                        }
                }
                dtc_st2(&Qr[t * HP + d], qq[0], qq[1]);
                dtc_st2(&Kr[t * HP + d], kq[0], kq[1]);
                dtc_st2(&Kb[t * KP + d0 + d], kb[0], kb[1]);
                dtc_st2(&qg[t * DK + d], qo[0], qo[1]);
                dtc_st2(&kh[t * DK + d], ko[0], ko[1]);
            }
            for (int d = tid; d < KH; d += NT) ws.egl[ci * DK + d0 + d] = exp2f(GAT(C - 1, d));
        }
        __syncthreads();
        /* 5. this pass's share of A_qk = (q e^(G - G_r)) (k e^(G_r - G))^T and L (before beta
         *    and the masks): the slots' blocks (row block rb against Kc_rb, whose rows are
         *    columns 0 .. 16 rb + 15) */
        {
            const bf16* Asrc = isq ? Qr : Kr;
#pragma unroll
            for (int z = 0; z < 3; ++z)
                if (z < nslot) {
                    const int rb = SLOT_RB(z), cb = SLOT_CB(z);
                    const bf16* Bsrc = Kc + 8 * rb * (rb + 1) * HP;
#pragma unroll
                    for (int kk = 0; kk < KH / 16; ++kk) {
                        unsigned a[4], bb[4];
                        dtc_frag_a(a, Asrc, HP, 16 * rb, 16 * kk, lane);
                        dtc_frag_b(bb, Bsrc, HP, 16 * cb, 16 * kk, lane);
                        mma_bf16(pacc[2 * z], a, bb[0], bb[1]);
                        mma_bf16(pacc[2 * z + 1], a, bb[2], bb[3]);
                    }
                }
        }
        __syncthreads(); /* the next pass restages phase A */
    }
    /* 6. A_qk (s <= t) and L = beta_t (..) (s < t) from the slots, zero in the six blocks above
     *    the diagonal (the workspace copy reads every column); then the flagged diagonal
     *    blocks from the exact sums */
#pragma unroll
    for (int n = 0; n < 6; ++n)
        if ((n >> 1) < nslot)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int t = 16 * SLOT_RB(n >> 1) + r4 + (e >> 1) * 8;
                const int s = 16 * SLOT_CB(n >> 1) + 8 * (n & 1) + c4 + (e & 1);
                if (isq)
                    AQ[t * AP + s] = f2bf(s <= t ? pacc[n][e] : 0.0f);
                else
                    Lf[t * FP + s] = s < t ? bs[t] * pacc[n][e] : 0.0f;
            }
#undef SLOT_RB
#undef SLOT_CB
    for (int e = tid; e < 6 * 256; e += NT) {
        /* upper block u: (0,1) (0,2) (0,3) (1,2) (1,3) (2,3) */
        const int u = e >> 8, rb = u < 3 ? 0 : u < 5 ? 1 : 2, cb = u < 3 ? u + 1 : u < 5 ? u - 1 : 3;
        const int t = 16 * rb + ((e >> 4) & 15), s = 16 * cb + (e & 15);
        AQ[t * AP + s] = f2bf(0.0f);
        Lf[t * FP + s] = 0.0f;
    }
    if (wide) {
        __syncthreads();
        const int a = tid >> 4, cc = tid & 15;
        for (int i = 0; i < 4; ++i) {
            if (!((wide >> i) & 1) || cc > a) continue;
            const int t = 16 * i + a, s = 16 * i + cc;
            AQ[t * AP + s] = f2bf(Xq[i * 256 + tid]);
            Lf[t * FP + s] = cc < a ? bs[t] * Xk[i * 256 + tid] : 0.0f;
        }
    }
    __syncthreads();
    /* Phase A is dead: stage v while the solve runs; A_qk to the workspace. */
    dtc_stage<bf16, C, DV, NT>(Vb, VP, v + row0 * v_stride + hv * DV, v_stride, cn, vec_v, tid);
    for (int e = tid; e < C * C / 8; e += NT) {
        const int t = e / (C / 8), s = (e % (C / 8)) * 8;
        *reinterpret_cast<uint4*>(ws.aq + ci * C * C + t * C + s) = *reinterpret_cast<const uint4*>(&AQ[t * AP + s]);
    }
    /* 4. (I + L)^-1 in f32 (dtc_ut_inverse). */
    dtc_ut_inverse<C, FP, NT, true>(Lf, Af, Tf, tid);
    /* beta folded into the columns: W = (Ab) (k e^G), U = (Ab) v */
    for (int e = tid; e < C * C; e += NT) {
        const int t = e / C, s = e % C;
        Ab[t * AP + s] = f2bf(s <= t ? Af[t * FP + s] * bs[s] : 0.0f);
    }
    dtc_cp_wait();
    __syncthreads();
    /* 5. W and U (lower triangular A: k tiles up to the row tile), each rounded to bf16 into
     *    shared memory over the dead inverse and stored as 16-byte pieces of rows (the
     *    fragments' own 4-byte stores touch twice the sectors) */
    bf16* Ts = reinterpret_cast<bf16*>(uni); /* [C][KP] W, then [C][VP] U, over Af and Tf */
    static_assert(C * (DK + 8) * 2 <= 2 * C * FP * 4 && C * (DV + 8) * 2 <= 2 * C * FP * 4, "W, U tiles over Af, Tf");
    {
        float acc[NTK][4];
#pragma unroll
        for (int n = 0; n < NTK; ++n)
#pragma unroll
            for (int e = 0; e < 4; ++e) acc[n][e] = 0.0f;
#pragma unroll
        for (int kk = 0; kk < 4; ++kk)
            if (kk <= mr) {
                unsigned a[4];
                dtc_frag_a(a, Ab, AP, 16 * mr, 16 * kk, lane);
#pragma unroll
                for (int np = 0; np < NTK / 2; ++np) {
                    unsigned bb[4];
                    dtc_frag_bt(bb, Kb, KP, cg * (DK / 2) + 16 * np, 16 * kk, lane);
                    mma_bf16(acc[2 * np], a, bb[0], bb[1]);
                    mma_bf16(acc[2 * np + 1], a, bb[2], bb[3]);
                }
            }
#pragma unroll
        for (int n = 0; n < NTK; ++n)
#pragma unroll
            for (int h = 0; h < 2; ++h)
                dtc_st2(&Ts[(16 * mr + r4 + 8 * h) * KP + cg * (DK / 2) + 8 * n + c4], acc[n][2 * h], acc[n][2 * h + 1]);
    }
    __syncthreads();
    dcp_store_rows<C, DK, NT>(ws.w + ci * C * DK, DK, Ts, KP, C, tid);
    __syncthreads(); /* Ts is free for U */
    {
        float acc[NTV][4];
#pragma unroll
        for (int n = 0; n < NTV; ++n)
#pragma unroll
            for (int e = 0; e < 4; ++e) acc[n][e] = 0.0f;
#pragma unroll
        for (int kk = 0; kk < 4; ++kk)
            if (kk <= mr) {
                unsigned a[4];
                dtc_frag_a(a, Ab, AP, 16 * mr, 16 * kk, lane);
#pragma unroll
                for (int np = 0; np < NTV / 2; ++np) {
                    unsigned bb[4];
                    dtc_frag_bt(bb, Vb, VP, cg * (DV / 2) + 16 * np, 16 * kk, lane);
                    mma_bf16(acc[2 * np], a, bb[0], bb[1]);
                    mma_bf16(acc[2 * np + 1], a, bb[2], bb[3]);
                }
            }
#pragma unroll
        for (int n = 0; n < NTV; ++n)
#pragma unroll
            for (int h = 0; h < 2; ++h)
                dtc_st2(&Ts[(16 * mr + r4 + 8 * h) * VP + cg * (DV / 2) + 8 * n + c4], acc[n][2 * h], acc[n][2 * h + 1]);
    }
    __syncthreads();
    dcp_store_rows<C, DV, NT>(ws.u + ci * C * DV, DV, Ts, VP, C, tid);
#undef GAT
}

#ifndef MODELC_DELTA_CP_STATE
#define MODELC_DELTA_CP_STATE
/*
 * A scan block's state [DK][SBV] (SBV value columns of a head) lives in f32 mma accumulators
 * st[MSW][SBV / 8][4] (warp w: row tiles w, w + NW, ..), with a bf16 copy Ss [DK][SBV + 8] in
 * shared memory for the products; the scans below share these three steps.
 */
/* st from state_in at sbase (row stride DV; null = zeros), and its copy Ss. */
template <int DK, int DV, int SBV, int NW, int MSW>
__device__ __forceinline__ void dcp_state_load(float (&st)[MSW][SBV / 8][4], bf16* Ss, const float* state_in, long sbase,
                                               int warp, int lane) {
    constexpr int MS = DK / 16, NTS = SBV / 8, SP = SBV + 8;
    const int r4 = lane >> 2, c4 = (lane & 3) * 2;
#pragma unroll
    for (int m = 0; m < MSW; ++m) {
        const int ms = warp + NW * m;
#pragma unroll
        for (int n = 0; n < NTS; ++n)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int d = 16 * ms + r4 + (e >> 1) * 8, col = 8 * n + c4 + (e & 1);
                st[m][n][e] = ms < MS && state_in ? state_in[sbase + (long)d * DV + col] : 0.0f;
            }
        if (ms < MS)
#pragma unroll
            for (int n = 0; n < NTS; ++n)
#pragma unroll
                for (int h = 0; h < 2; ++h)
                    dtc_st2(&Ss[(16 * ms + r4 + 8 * h) * SP + 8 * n + c4], st[m][n][2 * h], st[m][n][2 * h + 1]);
    }
}
/* h <- diag(e^G_last) h + (k e^(G_last - G))^T v_new, with E the chunk's e^G_last [DK], K its
 * k e^(G_last - G) [C][KP] and Vn its v_new [C][SP]; Ss rewritten. */
template <int DK, int SBV, int NW, int MSW, int KP>
__device__ __forceinline__ void dcp_state_update(float (&st)[MSW][SBV / 8][4], bf16* Ss, const float* E, const bf16* K,
                                                 const bf16* Vn, int warp, int lane) {
    constexpr int MS = DK / 16, NTS = SBV / 8, SP = SBV + 8;
    const int r4 = lane >> 2, c4 = (lane & 3) * 2;
#pragma unroll
    for (int m = 0; m < MSW; ++m) {
        const int ms = warp + NW * m;
        if (ms < MS) {
            const float e0 = E[16 * ms + r4], e1 = E[16 * ms + r4 + 8];
#pragma unroll
            for (int n = 0; n < NTS; ++n) {
                st[m][n][0] *= e0;
                st[m][n][1] *= e0;
                st[m][n][2] *= e1;
                st[m][n][3] *= e1;
            }
#pragma unroll
            for (int kk = 0; kk < 4; ++kk) {
                unsigned a[4];
                dtc_frag_at(a, K, KP, 16 * ms, 16 * kk, lane);
#pragma unroll
                for (int np = 0; np < NTS / 2; ++np) {
                    unsigned bb[4];
                    dtc_frag_bt(bb, Vn, SP, 16 * np, 16 * kk, lane);
                    mma_bf16(st[m][2 * np], a, bb[0], bb[1]);
                    mma_bf16(st[m][2 * np + 1], a, bb[2], bb[3]);
                }
            }
#pragma unroll
            for (int n = 0; n < NTS; ++n)
#pragma unroll
                for (int h = 0; h < 2; ++h)
                    dtc_st2(&Ss[(16 * ms + r4 + 8 * h) * SP + 8 * n + c4], st[m][n][2 * h], st[m][n][2 * h + 1]);
        }
    }
}
/* A warp's products with the n tiles of column half nh (NPW tiles of 8 columns) of a bf16
 * matrix B [..][sp] read transposed at k tile kk: acc += a B, and with TWO also acc2 += a2 B
 * from the same fragments of B. At NPW 1 the half is selected from one load (an indexed
 * register array would go to local memory). */
template <int NPW, bool TWO>
__device__ __forceinline__ void dcp_mma_half2(float (&acc)[NPW][4], const unsigned (&a)[4], float (&acc2)[NPW][4],
                                              const unsigned (&a2)[4], const bf16* B, int sp, int nh, int kk, int lane) {
    if constexpr (NPW == 1) {
        unsigned bb[4];
        dtc_frag_bt(bb, B, sp, 0, 16 * kk, lane);
        mma_bf16(acc[0], a, nh ? bb[2] : bb[0], nh ? bb[3] : bb[1]);
        if constexpr (TWO) mma_bf16(acc2[0], a2, nh ? bb[2] : bb[0], nh ? bb[3] : bb[1]);
    } else {
#pragma unroll
        for (int np = 0; np < NPW / 2; ++np) {
            unsigned bb[4];
            dtc_frag_bt(bb, B, sp, 8 * NPW * nh + 16 * np, 16 * kk, lane);
            mma_bf16(acc[2 * np], a, bb[0], bb[1]);
            mma_bf16(acc[2 * np + 1], a, bb[2], bb[3]);
            if constexpr (TWO) {
                mma_bf16(acc2[2 * np], a2, bb[0], bb[1]);
                mma_bf16(acc2[2 * np + 1], a2, bb[2], bb[3]);
            }
        }
    }
}
/* dcp_mma_half2 with one product. */
template <int NPW>
__device__ __forceinline__ void dcp_mma_half(float (&acc)[NPW][4], const unsigned (&a)[4], const bf16* B, int sp, int nh,
                                             int kk, int lane) {
    dcp_mma_half2<NPW, false>(acc, a, acc, a, B, sp, nh, kk, lane);
}
/* v_new = U - acc (W h's products of row tile mr, column half nh) into Vn; U and Vn [C][sp]; r4
 * and c4 the lane's fragment row and column (passed, not recomputed: the same machine code as
 * the loop written in place). */
template <int NPW>
__device__ __forceinline__ void dcp_store_vnew(bf16* Vn, const bf16* U, const float (&acc)[NPW][4], int sp, int mr, int nh,
                                               int r4, int c4) {
#pragma unroll
    for (int n = 0; n < NPW; ++n)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const int t = 16 * mr + r4 + 8 * h, col = 8 * (NPW * nh + n) + c4;
            dtc_st2(&Vn[t * sp + col], bf2f(U[t * sp + col]) - acc[n][2 * h], bf2f(U[t * sp + col + 1]) - acc[n][2 * h + 1]);
        }
}
/* st to state_out at sbase (null: not stored). */
template <int DK, int DV, int SBV, int NW, int MSW>
__device__ __forceinline__ void dcp_state_store(const float (&st)[MSW][SBV / 8][4], float* state_out, long sbase, int warp,
                                                int lane) {
    constexpr int MS = DK / 16, NTS = SBV / 8;
    const int r4 = lane >> 2, c4 = (lane & 3) * 2;
    if (state_out) {
#pragma unroll
        for (int m = 0; m < MSW; ++m) {
            const int ms = warp + NW * m;
            if (ms < MS)
#pragma unroll
                for (int n = 0; n < NTS; ++n)
#pragma unroll
                    for (int e = 0; e < 4; ++e) {
                        const int d = 16 * ms + r4 + (e >> 1) * 8, col = 8 * n + c4 + (e & 1);
                        state_out[sbase + (long)d * DV + col] = st[m][n][e];
                    }
        }
    }
}
#endif

/*
 * delta_rule_cp_scan_@HASH@: pass 2 of 3, the state scan over the chunks of a sequence.
 *   One block per (SBV value columns, value head, batch) (an entry per width, below); the state [DK][SBV] stays in f32 mma
 *   accumulators (warp w: row tiles w, w + 8, ..), a bf16 copy in shared memory feeds the
 *   products; v_new's row tile w & 3, columns half w >> 2. Per chunk: store h (bf16) to the workspace, v_new = U - W h, store v_new,
 *   h <- diag(e^G_last) h + (k e^(G_last - G))^T v_new. The next two chunks' W, U, k, e^G_last
 *   are prefetched with cp.async (three buffers). Reads state_in (null = zeros), writes state_out.
 *   MC (sm_90, the delta_rule_cp_scan_mc_ entry): the DV / SBV blocks of a head form a cluster,
 *   and each block loads 2C / (DV / SBV) of the chunk's rows of W and k for the whole cluster
 *   (bulk copies multicast to every block, completing on the buffer's mbarrier), so that L2 sends
 *   each row once per head rather than once per block. Chunk c + 2 is staged after chunk c's
 *   v_new product, once a cluster barrier says every block is done with chunk c - 1's buffer.
 * Grid (DV / SBV, Hv, B), block 256 threads (8 warps), dynamic smem = the scan part of
 *   delta_rule_cp_smem().
 */
template <int SBV, bool MC> /* value columns per block; W and k multicast to a cluster */
__device__ __forceinline__ void delta_rule_cp_scan_body_@HASH@(
    @ARGS@)
{
@CONSTS@    (void)VTAIL; (void)q; (void)q_stride; (void)k; (void)k_stride; (void)v; (void)v_stride;
    (void)g; (void)beta; (void)o; (void)o_stride;
    constexpr int C = 64;
    constexpr int NW = 8;
    constexpr int NT = 32 * NW;
    constexpr int NTS = SBV / 8;          /* n tiles of the state (even)                       */
    constexpr int NPW = NTS / 2;          /* n tiles per warp of v_new (a column half)         */
    constexpr int MS = DK / 16;
    constexpr int MSW = (MS + NW - 1) / NW;
    constexpr int KP = DK + 8;
    constexpr int SP = SBV + 8;
    constexpr int NBUF = 3;               /* chunks in flight: the current one and two ahead   */
    constexpr int NCL = DV / SBV;         /* MC: blocks of the cluster (a head's value slices)  */
    constexpr int MROWS = 2 * C / NCL;    /* MC: rows of W, then k, a block copies for all      */
    static_assert(!MC || (NCL >= 2 && NCL <= 8 && MROWS * NCL == 2 * C && MROWS <= 256), "cluster of 2, 4 or 8");
    extern __shared__ __align__(16) unsigned char smem_raw[];
    bf16* Ss = reinterpret_cast<bf16*>(smem_raw);      /* [DK][SP] h, bf16                   */
    bf16* Vn = Ss + DK * SP;                           /* [C][SP] v_new                      */
    bf16* Wb = Vn + C * SP;                            /* [NBUF][C][KP] W                    */
    bf16* Kb = Wb + NBUF * C * KP;                     /* [NBUF][C][KP] k e^(G_last - G)     */
    bf16* Ub = Kb + NBUF * C * KP;                     /* [NBUF][C][SP] U                    */
    float* Eb = reinterpret_cast<float*>(Ub + NBUF * C * SP); /* [NBUF][DK] e^G_last         */
    unsigned long long* Fb = reinterpret_cast<unsigned long long*>(Eb + NBUF * DK); /* MC: [NBUF] W, k full */

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int r4 = lane >> 2, c4 = (lane & 3) * 2;
    const int mr = warp & 3, nh = warp >> 2; /* v_new: row tile, column half                  */
    const int j0 = blockIdx.x * SBV;
    const int hv = blockIdx.y;
    const long b = blockIdx.z;
    const int NC = (T + C - 1) / C;
    const long bh = b * HV + hv;
    const long sbase = bh * (long)DK * DV + j0;
    const DcpWs ws = dcp_ws<C, DK, DV>(ws_raw, (long)gridDim.z * HV * NC);

    const unsigned rank = MC ? cluster_ctarank() : 0;

    /* chunk c's operands into buffer p (one commit group; with MC, W and k on barrier Fb[p]) */
    auto stage = [&](int c, int p) {
        const long ci = bh * NC + c;
        if constexpr (MC) {
            if (tid == 0) mbar_expect_tx(Fb + p, 2 * C * DK * (unsigned)sizeof(bf16));
            if (tid < MROWS) {
                const int r = (int)rank * MROWS + tid, t = r % C; /* rows 0..C-1: W, C..2C-1: k */
                bulk_copy_multicast((r < C ? Wb : Kb) + (p * C + t) * KP, (r < C ? ws.w : ws.kh) + (ci * C + t) * DK,
                                    DK * (unsigned)sizeof(bf16), Fb + p, (unsigned short)((1u << NCL) - 1));
            }
        } else {
            for (int e = tid; e < C * DK / 8; e += NT) {
                const int t = e / (DK / 8), x = (e % (DK / 8)) * 8;
                cp_async16(Wb + (p * C + t) * KP + x, ws.w + (ci * C + t) * DK + x, true);
                cp_async16(Kb + (p * C + t) * KP + x, ws.kh + (ci * C + t) * DK + x, true);
            }
        }
        for (int e = tid; e < C * SBV / 8; e += NT) {
            const int t = e / (SBV / 8), x = (e % (SBV / 8)) * 8;
            cp_async16(Ub + (p * C + t) * SP + x, ws.u + (ci * C + t) * DV + j0 + x, true);
        }
        for (int e = tid; e < DK / 4; e += NT) cp_async16(Eb + p * DK + 4 * e, ws.egl + ci * DK + 4 * e, true);
        cp_async_commit();
    };

    float st[MSW][NTS][4];
    dcp_state_load<DK, DV, SBV, NW, MSW>(st, Ss, state_in, sbase, warp, lane);
    if constexpr (MC) {
        if (tid == 0) {
            for (int i = 0; i < NBUF; ++i) mbar_init(Fb + i, 1);
            asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
        }
        cluster_sync(); /* every block's barriers are initialised before a copy lands there */
    }
    stage(0, 0);
    if (NC > 1) stage(1, 1);
    if constexpr (MC) cluster_arrive(); /* matches chunk 0's wait (buffer 2 was never used) */
    for (int c = 0; c < NC; ++c) {
        const int p = c % NBUF;
        const long ci = bh * NC + c;
        if constexpr (MC) {
            /* chunk c's group of U and e^G_last (chunk c + 1's may stay in flight), its W and k */
            if (c + 1 < NC) {
                cp_async_wait<1>();
            } else {
                cp_async_wait<0>();
            }
            mbar_wait(Fb + p, (unsigned)(c / NBUF) & 1u);
        } else if (c + 2 < NC) {
            /* chunk c + 2 into the buffer chunk c - 1 used (free since the last barrier), then
             * wait for chunk c's group: the groups committed after it may stay in flight */
            stage(c + 2, (c + 2) % NBUF);
            cp_async_wait<2>();
        } else if (c + 1 < NC) {
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        __syncthreads(); /* buffer p and Ss are ready */
        const bf16* W = Wb + p * C * KP;
        const bf16* K = Kb + p * C * KP;
        const bf16* U = Ub + p * C * SP;
        const float* E = Eb + p * DK;
        /* h entering the chunk, for the output pass */
        for (int e = tid; e < DK * SBV / 8; e += NT) {
            const int d = e / (SBV / 8), x = (e % (SBV / 8)) * 8;
            *reinterpret_cast<uint4*>(ws.hs + (ci * DK + d) * DV + j0 + x) = *reinterpret_cast<const uint4*>(&Ss[d * SP + x]);
        }
        /* v_new = U - W h: row tile mr, n tiles nh NPW .. (nh + 1) NPW - 1 */
        {
            float acc[NPW][4];
#pragma unroll
            for (int n = 0; n < NPW; ++n)
#pragma unroll
                for (int e = 0; e < 4; ++e) acc[n][e] = 0.0f;
#pragma unroll
            for (int kk = 0; kk < MS; ++kk) {
                unsigned a[4];
                dtc_frag_a(a, W, KP, 16 * mr, 16 * kk, lane);
                dcp_mma_half<NPW>(acc, a, Ss, SP, nh, kk, lane);
            }
            dcp_store_vnew<NPW>(Vn, U, acc, SP, mr, nh, r4, c4);
        }
        __syncthreads(); /* Vn complete; every warp is done reading Ss */
        if constexpr (MC) {
            cluster_wait(); /* every block of the cluster is done with chunk c - 1's buffer */
            if (c + 2 < NC) stage(c + 2, (c + 2) % NBUF);
        }
        for (int e = tid; e < C * SBV / 8; e += NT) {
            const int t = e / (SBV / 8), x = (e % (SBV / 8)) * 8;
            *reinterpret_cast<uint4*>(ws.vn + (ci * C + t) * DV + j0 + x) = *reinterpret_cast<const uint4*>(&Vn[t * SP + x]);
        }
        /* h <- e^G_last h + (k e^(G_last - G))^T v_new */
        dcp_state_update<DK, SBV, NW, MSW, KP>(st, Ss, E, K, Vn, warp, lane);
        __syncthreads(); /* Ss updated; Vn and buffer p free */
        if constexpr (MC) cluster_arrive();
    }
    if constexpr (MC) cluster_wait(); /* no block leaves while the cluster may still copy to it */
    dcp_state_store<DK, DV, SBV, NW, MSW>(st, state_out, sbase, warp, lane);
}

@SCAN_ENTRIES@
/*
 * delta_rule_cp_out_@HASH@: pass 3 of 3, one block per (chunk, value head, batch).
 *   o = (q e^G) h + A_qk v_new over the chunk's full rows (all DV columns), then the store
 *   @EPILOGUE@: o goes through shared memory (over v_new) so that rows leave in 16-byte pieces.
 * Grid (NC, Hv, B), block 256 threads = 4 row tiles x 2 column groups of warps (DV / 2
 *   columns each), dynamic smem = the output part of delta_rule_cp_smem().
 */
extern "C" __global__ void __launch_bounds__(256, 2) delta_rule_cp_out_@HASH@(
    @ARGS@)
{
@CONSTS@    (void)VTAIL; (void)q; (void)q_stride; (void)k; (void)k_stride; (void)v; (void)v_stride;
    (void)g; (void)beta; (void)state_in; (void)state_out;
    constexpr int C = 64;
    constexpr int NW = 8;
    constexpr int NT = 32 * NW;
    constexpr int MS = DK / 16;
    constexpr int BVW = DV / 2;           /* value columns per warp                            */
    constexpr int NTW = BVW / 8;          /* n tiles per warp (even)                           */
    constexpr int KP = DK + 8;
    constexpr int VP = DV + 8;
    constexpr int AP = C + 8;
    extern __shared__ __align__(16) unsigned char smem_raw[];
    bf16* Qs = reinterpret_cast<bf16*>(smem_raw);      /* [C][KP] q e^G                      */
    bf16* Hs = Qs + C * KP;                            /* [DK][VP] h                         */
    bf16* As = Hs + DK * VP;                           /* [C][AP] A_qk                       */
    bf16* Vs = As + C * AP;                            /* [C][VP] v_new                      */
    float* nss = reinterpret_cast<float*>(Vs + C * VP); /* [2][C] sums of o^2 per group      */
    (void)nss;

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int mr = warp & 3, cg = warp >> 2;
    const int r4 = lane >> 2, c4 = (lane & 3) * 2;
    const int NC = gridDim.x;
    const int c0 = blockIdx.x * C;
    const int hv = blockIdx.y;
    const long b = blockIdx.z;
    const int cn = min(C, T - c0);
    const long row0 = b * T + c0;
    const long ci = (b * HV + hv) * NC + blockIdx.x;
    const DcpWs ws = dcp_ws<C, DK, DV>(ws_raw, (long)gridDim.z * HV * NC);

    for (int e = tid; e < C * DK / 8; e += NT) {
        const int t = e / (DK / 8), x = (e % (DK / 8)) * 8;
        cp_async16(Qs + t * KP + x, ws.qg + (ci * C + t) * DK + x, true);
    }
    for (int e = tid; e < DK * DV / 8; e += NT) {
        const int d = e / (DV / 8), x = (e % (DV / 8)) * 8;
        cp_async16(Hs + d * VP + x, ws.hs + (ci * DK + d) * DV + x, true);
    }
    cp_async_commit(); /* group 1: q e^G and h */
    for (int e = tid; e < C * C / 8; e += NT) {
        const int t = e / (C / 8), x = (e % (C / 8)) * 8;
        cp_async16(As + t * AP + x, ws.aq + (ci * C + t) * C + x, true);
    }
    for (int e = tid; e < C * DV / 8; e += NT) {
        const int t = e / (DV / 8), x = (e % (DV / 8)) * 8;
        cp_async16(Vs + t * VP + x, ws.vn + (ci * C + t) * DV + x, true);
    }
@GATE_STAGE@    cp_async_commit(); /* group 2: A_qk, v_new (and the gate rows), in flight during the first product */
    cp_async_wait<1>();
    __syncthreads();
    float acc[NTW][4];
#pragma unroll
    for (int n = 0; n < NTW; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e) acc[n][e] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < MS; ++kk) {
        unsigned a[4];
        dtc_frag_a(a, Qs, KP, 16 * mr, 16 * kk, lane);
#pragma unroll
        for (int np = 0; np < NTW / 2; ++np) {
            unsigned bb[4];
            dtc_frag_bt(bb, Hs, VP, cg * BVW + 16 * np, 16 * kk, lane);
            mma_bf16(acc[2 * np], a, bb[0], bb[1]);
            mma_bf16(acc[2 * np + 1], a, bb[2], bb[3]);
        }
    }
    cp_async_wait<0>();
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < 4; ++kk)
        if (kk <= mr) {
            unsigned a[4];
            dtc_frag_a(a, As, AP, 16 * mr, 16 * kk, lane);
#pragma unroll
            for (int np = 0; np < NTW / 2; ++np) {
                unsigned bb[4];
                dtc_frag_bt(bb, Vs, VP, cg * BVW + 16 * np, 16 * kk, lane);
                mma_bf16(acc[2 * np], a, bb[0], bb[1]);
                mma_bf16(acc[2 * np + 1], a, bb[2], bb[3]);
            }
        }
@STORE@
}
