
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
#endif

/*
 * delta_rule_cp_prep_@HASH@: pass 1 of 3, one block per (chunk, value head, batch), no state.
 *   Fuses the q/k l2 norm and scale, the in-chunk cumsum of g (log2 units), the decayed q and k
 *   rows, A_qk and L (16-row block i against Kc_i, reference r = 16 i, fla's chunk_kda; a
 *   diagonal block whose decay span passes 2^64 is summed exactly), the UT solve (I + L)^-1 in
 *   f32 and W, U on tensor cores. Writes egl, qg, kh, w, u, aq of the workspace.
 * Grid (NC, Hv, B), block 256 threads = 4 row tiles x 2 column groups of warps,
 *   dynamic smem = the prep part of delta_rule_cp_smem().
 */
extern "C" __global__ void __launch_bounds__(256) delta_rule_cp_prep_@HASH@(
    @ARGS@)
{
@CONSTS@    (void)VTAIL; (void)state_in; (void)state_out; (void)o; (void)o_stride;
    constexpr int C = 64;
    constexpr int NW = 8;
    constexpr int NT = 32 * NW;
    constexpr int MS = DK / 16;           /* k tiles of the [C][DK] products                   */
    constexpr int NTK = DK / 16;          /* n tiles per warp of W (DK / 2 columns)             */
    constexpr int NTV = DV / 16;          /* n tiles per warp of U (DV / 2 columns)             */
    constexpr int KP = DK + 8;
    constexpr int VP = DV + 8;
    constexpr int AP = C + 8;
    constexpr int FP = C + 1;
    constexpr int NG = PER_CHANNEL ? C * DK : C;
    constexpr float LOG2E = 1.4426950408889634f;
    constexpr float SPAN_MAX = 64.0f;
    extern __shared__ __align__(16) unsigned char smem_raw[];
    /* kept through the block */
    bf16* Kb = reinterpret_cast<bf16*>(smem_raw);      /* [C][KP] k e^G                      */
    bf16* AQ = Kb + C * KP;                            /* [C][AP] A_qk                       */
    float* Lf = reinterpret_cast<float*>(AQ + C * AP); /* [C][FP] L                          */
    float* nq = Lf + C * FP;
    float* nk = nq + C;
    float* bs = nk + C;
    int* flags = reinterpret_cast<int*>(bs + C);
    unsigned char* uni = reinterpret_cast<unsigned char*>(flags + 4);
    /* phase A */
    float* Gs = reinterpret_cast<float*>(uni);         /* [C][DK] or [C]: g, then log2 cumsum */
    bf16* Qr = reinterpret_cast<bf16*>(Gs + NG);       /* [C][KP] q, then q e^(G - G_r)      */
    bf16* Kr = Qr + C * KP;                            /* [C][KP] k, then k e^(G - G_r)      */
    bf16* Kc = Kr + C * KP;                            /* [160][KP] k e^(G_r - G), per block */
    /* phase B, over phase A */
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
#define GAT(t, d) (PER_CHANNEL ? Gs[(t) * DK + (d)] : Gs[t])

    if (tid == 0) flags[0] = 0;
    /* 0. stage q, k, g and beta (rows past T are zero) */
    dtc_stage<bf16, C, DK, NT>(Qr, KP, q + row0 * q_stride + hk * DK, q_stride, cn, vec_qk, tid);
    dtc_stage<bf16, C, DK, NT>(Kr, KP, k + row0 * k_stride + hk * DK, k_stride, cn, vec_qk, tid);
    if (PER_CHANNEL)
        dtc_stage<float, C, DK, NT>(Gs, DK, g + row0 * HV * DK + hv * DK, (long)HV * DK, cn, vec_g, tid);
    else if (tid < C)
        Gs[tid] = tid < cn ? g[(row0 + tid) * HV + hv] : 0.0f;
    if (tid < C) bs[tid] = tid < cn ? beta[(row0 + tid) * HV + hv] : 0.0f;
    dtc_cp_wait();
    __syncthreads();
    /* 1. row scales (l2 norms) and the in-chunk cumulative decay, in log2 units */
    for (int t = warp; t < C; t += NW) {
        float sq = 0.0f, sk = 0.0f;
        for (int d = lane; d < DK; d += 32) {
            const float qv = bf2f(Qr[t * KP + d]), kv = bf2f(Kr[t * KP + d]);
            sq += qv * qv;
            sk += kv * kv;
        }
        sq = warp_sum(sq);
        sk = warp_sum(sk);
        if (lane == 0) {
            nq[t] = L2NORM ? SCALE * rsqrtf(sq + 1e-6f) : SCALE;
            nk[t] = L2NORM ? rsqrtf(sk + 1e-6f) : 1.0f;
        }
    }
    if (PER_CHANNEL) {
        for (int d = tid; d < DK; d += NT) {
            float acc = 0.0f, gr = 0.0f;
            int wide = 0;
#pragma unroll 16
            for (int t = 0; t < C; ++t) {
                acc += Gs[t * DK + d] * LOG2E;
                Gs[t * DK + d] = acc;
                if ((t & 15) == 0) gr = acc;
                if ((t & 15) == 15 && gr - acc > SPAN_MAX) wide |= 1 << (t >> 4);
            }
            if (wide) atomicOr(flags, wide);
        }
    } else if (warp == 0) {
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
        if (lane < 4 && Gs[16 * lane] - Gs[16 * lane + 15] > SPAN_MAX) atomicOr(flags, 1 << lane);
    }
    __syncthreads();
    /* 2. bf16 operands: in place over the staged q and k (the intra-chunk products), k e^G for
     *    W, and straight to the workspace q e^G, k e^(G_last - G) and e^G_last. Two channels a
     *    thread (DK is even). */
    {
        bf16* qg = ws.qg + ci * C * DK;
        bf16* kh = ws.kh + ci * C * DK;
        for (int e = tid; e < C * DK / 2; e += NT) {
            const int t = e / (DK / 2), d = (e % (DK / 2)) * 2, i = t >> 4;
            float qo[2], ko[2], qq[2], kk2[2], kb[2];
#pragma unroll
            for (int x = 0; x < 2; ++x) {
                const float qv = bf2f(Qr[t * KP + d + x]) * nq[t];
                const float kv = bf2f(Kr[t * KP + d + x]) * nk[t];
                const float gt = GAT(t, d + x);
                const float er = exp2f(gt - GAT(16 * i, d + x));
                const float eg = exp2f(gt);
                qq[x] = qv * er;
                kk2[x] = kv * er;
                qo[x] = qv * eg;
                kb[x] = kv * eg;
                ko[x] = kv * exp2f(GAT(C - 1, d + x) - gt);
#pragma unroll
                for (int ii = 0; ii < 4; ++ii)
                    if (ii >= i) {
                        const float xx = GAT(16 * ii, d + x) - gt;
                        Kc[(8 * ii * (ii + 1) + t) * KP + d + x] = f2bf(kv * exp2f(ii == i ? fminf(xx, SPAN_MAX) : xx));
                    }
            }
            dtc_st2(&Qr[t * KP + d], qq[0], qq[1]);
            dtc_st2(&Kr[t * KP + d], kk2[0], kk2[1]);
            dtc_st2(&Kb[t * KP + d], kb[0], kb[1]);
            dtc_st2(&qg[t * DK + d], qo[0], qo[1]);
            dtc_st2(&kh[t * DK + d], ko[0], ko[1]);
        }
        for (int d = tid; d < DK; d += NT) ws.egl[ci * DK + d] = exp2f(GAT(C - 1, d));
    }
    __syncthreads();
    /* 3. AQ = (q e^(G - G_r)) (k e^(G_r - G))^T for s <= t and L = beta_t (k e^(G - G_r))
     *    (k e^(G_r - G))^T for s < t; warp w < 4 takes AQ block w, warp 4 + w' L block 3 - w'. */
    {
        const int job = warp;
        const bool isq = job < 4;
        const int i = isq ? job : 7 - job;
        const bf16* Asrc = isq ? Qr : Kr;
        const bf16* Bsrc = Kc + 8 * i * (i + 1) * KP;
        float acc[8][4];
#pragma unroll
        for (int n = 0; n < 8; ++n)
#pragma unroll
            for (int e = 0; e < 4; ++e) acc[n][e] = 0.0f;
#pragma unroll
        for (int kk = 0; kk < MS; ++kk) {
            unsigned a[4];
            dtc_frag_a(a, Asrc, KP, 16 * i, 16 * kk, lane);
#pragma unroll
            for (int np = 0; np < 4; ++np)
                if (np <= i) {
                    unsigned bb[4];
                    dtc_frag_b(bb, Bsrc, KP, 16 * np, 16 * kk, lane);
                    mma_bf16(acc[2 * np], a, bb[0], bb[1]);
                    mma_bf16(acc[2 * np + 1], a, bb[2], bb[3]);
                }
        }
#pragma unroll
        for (int n = 0; n < 8; ++n)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int t = 16 * i + r4 + (e >> 1) * 8, s = 8 * n + c4 + (e & 1);
                /* columns past the row block's end are zero (the workspace copy reads them) */
                const float x = n < 2 * (i + 1) ? acc[n][e] : 0.0f;
                if (isq)
                    AQ[t * AP + s] = f2bf(s <= t ? x : 0.0f);
                else
                    Lf[t * FP + s] = s < t ? bs[t] * x : 0.0f;
            }
    }
    __syncthreads();
    /* 3b. diagonal blocks whose decay span exceeds SPAN_MAX: exact sums from global memory */
    const int wide = flags[0];
    if (wide) {
        for (int i = 0; i < 4; ++i) {
            if (!((wide >> i) & 1)) continue;
            for (int p = tid; p < 256; p += NT) {
                const int a = p >> 4, cc = p & 15, t = 16 * i + a, s = 16 * i + cc;
                if (cc > a) continue;
                float lq = 0.0f, lk = 0.0f;
                if (t < cn)
                    for (int d = 0; d < DK; ++d) {
                        const float ks = bf2f(k[(row0 + s) * k_stride + hk * DK + d]) * nk[s];
                        const float e = exp2f(GAT(t, d) - GAT(s, d)) * ks;
                        lq = fmaf(bf2f(q[(row0 + t) * q_stride + hk * DK + d]) * nq[t], e, lq);
                        lk = fmaf(bf2f(k[(row0 + t) * k_stride + hk * DK + d]) * nk[t], e, lk);
                    }
                AQ[t * AP + s] = f2bf(lq);
                Lf[t * FP + s] = cc < a ? bs[t] * lk : 0.0f;
            }
        }
        __syncthreads();
    }
    /* Phase A is dead: stage v while the solve runs; A_qk to the workspace. */
    dtc_stage<bf16, C, DV, NT>(Vb, VP, v + row0 * v_stride + hv * DV, v_stride, cn, vec_v, tid);
    for (int e = tid; e < C * C / 8; e += NT) {
        const int t = e / (C / 8), s = (e % (C / 8)) * 8;
        *reinterpret_cast<uint4*>(ws.aq + ci * C * C + t * C + s) = *reinterpret_cast<const uint4*>(&AQ[t * AP + s]);
    }
    /* 4. (I + L)^-1 in f32: 16x16 diagonal blocks by forward substitution, then by distance */
    if (tid < C) {
        const int i = tid >> 4, cc = tid & 15;
        float x[16];
#pragma unroll
        for (int a = 0; a < 16; ++a) {
            float acc = a == cc ? 1.0f : 0.0f;
#pragma unroll
            for (int s = 0; s < a; ++s) acc = fmaf(-Lf[(16 * i + a) * FP + 16 * i + s], x[s], acc);
            x[a] = a < cc ? 0.0f : acc;
            Af[(16 * i + a) * FP + 16 * i + cc] = x[a];
        }
    }
    __syncthreads();
#pragma unroll 1
    for (int dist = 1; dist < 4; ++dist) {
        for (int e = tid; e < (4 - dist) * 256; e += NT) {
            const int i = dist + (e >> 8), jb = i - dist, a = (e >> 4) & 15, cc = e & 15;
            float acc = 0.0f;
            for (int m = jb; m < i; ++m)
#pragma unroll
                for (int x = 0; x < 16; ++x)
                    acc = fmaf(Lf[(16 * i + a) * FP + 16 * m + x], Af[(16 * m + x) * FP + 16 * jb + cc], acc);
            Tf[(16 * i + a) * FP + 16 * jb + cc] = acc;
        }
        __syncthreads();
        for (int e = tid; e < (4 - dist) * 256; e += NT) {
            const int i = dist + (e >> 8), jb = i - dist, a = (e >> 4) & 15, cc = e & 15;
            float acc = 0.0f;
            for (int x = 0; x <= a; ++x)
                acc = fmaf(Af[(16 * i + a) * FP + 16 * i + x], Tf[(16 * i + x) * FP + 16 * jb + cc], acc);
            Af[(16 * i + a) * FP + 16 * jb + cc] = -acc;
        }
        __syncthreads();
    }
    /* beta folded into the columns: W = (Ab) (k e^G), U = (Ab) v */
    for (int e = tid; e < C * C; e += NT) {
        const int t = e / C, s = e % C;
        Ab[t * AP + s] = f2bf(s <= t ? Af[t * FP + s] * bs[s] : 0.0f);
    }
    dtc_cp_wait();
    __syncthreads();
    /* 5. W and U (lower triangular A: k tiles up to the row tile), stored bf16 */
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
        bf16* w = ws.w + ci * C * DK;
#pragma unroll
        for (int n = 0; n < NTK; ++n)
#pragma unroll
            for (int h = 0; h < 2; ++h)
                dtc_st2(&w[(16 * mr + r4 + 8 * h) * DK + cg * (DK / 2) + 8 * n + c4], acc[n][2 * h], acc[n][2 * h + 1]);
    }
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
        bf16* u = ws.u + ci * C * DV;
#pragma unroll
        for (int n = 0; n < NTV; ++n)
#pragma unroll
            for (int h = 0; h < 2; ++h)
                dtc_st2(&u[(16 * mr + r4 + 8 * h) * DV + cg * (DV / 2) + 8 * n + c4], acc[n][2 * h], acc[n][2 * h + 1]);
    }
#undef GAT
}

/*
 * delta_rule_cp_scan_@HASH@: pass 2 of 3, the state scan over the chunks of a sequence.
 *   One block per (SBV value columns, value head, batch); the state [DK][SBV] stays in f32 mma
 *   accumulators (warp w: row tiles w, w + 4, ..), a bf16 copy in shared memory feeds the
 *   products. Per chunk: store h (bf16) to the workspace, v_new = U - W h, store v_new,
 *   h <- diag(e^G_last) h + (k e^(G_last - G))^T v_new. The next chunk's W, U, k, e^G_last are
 *   prefetched with cp.async (double buffer). Reads state_in (null = zeros), writes state_out.
 * Grid (DV / SBV, Hv, B), block 128 threads (4 warps), dynamic smem = the scan part of
 *   delta_rule_cp_smem().
 */
extern "C" __global__ void __launch_bounds__(128) delta_rule_cp_scan_@HASH@(
    @ARGS@)
{
@CONSTS@    (void)VTAIL; (void)q; (void)q_stride; (void)k; (void)k_stride; (void)v; (void)v_stride;
    (void)g; (void)beta; (void)o; (void)o_stride;
    constexpr int C = 64;
    constexpr int NT = 128;
    constexpr int SBV = @SBV@;            /* value columns per block                           */
    constexpr int NTS = SBV / 8;          /* n tiles (even)                                    */
    constexpr int MS = DK / 16;
    constexpr int MSW = (MS + 3) / 4;
    constexpr int KP = DK + 8;
    constexpr int SP = SBV + 8;
    extern __shared__ __align__(16) unsigned char smem_raw[];
    bf16* Ss = reinterpret_cast<bf16*>(smem_raw);      /* [DK][SP] h, bf16                   */
    bf16* Vn = Ss + DK * SP;                           /* [C][SP] v_new                      */
    bf16* Wb = Vn + C * SP;                            /* [2][C][KP] W                       */
    bf16* Kb = Wb + 2 * C * KP;                        /* [2][C][KP] k e^(G_last - G)        */
    bf16* Ub = Kb + 2 * C * KP;                        /* [2][C][SP] U                       */
    float* Eb = reinterpret_cast<float*>(Ub + 2 * C * SP); /* [2][DK] e^G_last               */

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int r4 = lane >> 2, c4 = (lane & 3) * 2;
    const int j0 = blockIdx.x * SBV;
    const int hv = blockIdx.y;
    const long b = blockIdx.z;
    const int NC = (T + C - 1) / C;
    const long bh = b * HV + hv;
    const long sbase = bh * (long)DK * DV + j0;
    const DcpWs ws = dcp_ws<C, DK, DV>(ws_raw, (long)gridDim.z * HV * NC);

    /* chunk c's operands into buffer p (one commit group) */
    auto stage = [&](int c, int p) {
        const long ci = bh * NC + c;
        for (int e = tid; e < C * DK / 8; e += NT) {
            const int t = e / (DK / 8), x = (e % (DK / 8)) * 8;
            cp_async16(Wb + (p * C + t) * KP + x, ws.w + (ci * C + t) * DK + x, true);
            cp_async16(Kb + (p * C + t) * KP + x, ws.kh + (ci * C + t) * DK + x, true);
        }
        for (int e = tid; e < C * SBV / 8; e += NT) {
            const int t = e / (SBV / 8), x = (e % (SBV / 8)) * 8;
            cp_async16(Ub + (p * C + t) * SP + x, ws.u + (ci * C + t) * DV + j0 + x, true);
        }
        for (int e = tid; e < DK / 4; e += NT) cp_async16(Eb + p * DK + 4 * e, ws.egl + ci * DK + 4 * e, true);
        cp_async_commit();
    };

    float st[MSW][NTS][4];
#pragma unroll
    for (int m = 0; m < MSW; ++m) {
        const int ms = warp + 4 * m;
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
    stage(0, 0);
    for (int c = 0; c < NC; ++c) {
        const int p = c & 1;
        const long ci = bh * NC + c;
        if (c + 1 < NC) {
            stage(c + 1, p ^ 1);
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
        /* v_new = U - W h: warp = row tile */
        {
            float acc[NTS][4];
#pragma unroll
            for (int n = 0; n < NTS; ++n)
#pragma unroll
                for (int e = 0; e < 4; ++e) acc[n][e] = 0.0f;
#pragma unroll
            for (int kk = 0; kk < MS; ++kk) {
                unsigned a[4];
                dtc_frag_a(a, W, KP, 16 * warp, 16 * kk, lane);
#pragma unroll
                for (int np = 0; np < NTS / 2; ++np) {
                    unsigned bb[4];
                    dtc_frag_bt(bb, Ss, SP, 16 * np, 16 * kk, lane);
                    mma_bf16(acc[2 * np], a, bb[0], bb[1]);
                    mma_bf16(acc[2 * np + 1], a, bb[2], bb[3]);
                }
            }
#pragma unroll
            for (int n = 0; n < NTS; ++n)
#pragma unroll
                for (int h = 0; h < 2; ++h) {
                    const int t = 16 * warp + r4 + 8 * h, col = 8 * n + c4;
                    dtc_st2(&Vn[t * SP + col], bf2f(U[t * SP + col]) - acc[n][2 * h],
                            bf2f(U[t * SP + col + 1]) - acc[n][2 * h + 1]);
                }
        }
        __syncthreads(); /* Vn complete; every warp is done reading Ss */
        for (int e = tid; e < C * SBV / 8; e += NT) {
            const int t = e / (SBV / 8), x = (e % (SBV / 8)) * 8;
            *reinterpret_cast<uint4*>(ws.vn + (ci * C + t) * DV + j0 + x) = *reinterpret_cast<const uint4*>(&Vn[t * SP + x]);
        }
        /* h <- e^G_last h + (k e^(G_last - G))^T v_new */
#pragma unroll
        for (int m = 0; m < MSW; ++m) {
            const int ms = warp + 4 * m;
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
        __syncthreads(); /* Ss updated; Vn and buffer p free */
    }
    if (state_out) {
#pragma unroll
        for (int m = 0; m < MSW; ++m) {
            const int ms = warp + 4 * m;
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

/*
 * delta_rule_cp_out_@HASH@: pass 3 of 3, one block per (chunk, value head, batch).
 *   o = (q e^G) h + A_qk v_new over the chunk's full rows (all DV columns), then the store
 *   @EPILOGUE@.
 * Grid (NC, Hv, B), block 256 threads = 4 row tiles x 2 column groups of warps (DV / 2
 *   columns each), dynamic smem = the output part of delta_rule_cp_smem().
 */
extern "C" __global__ void __launch_bounds__(256) delta_rule_cp_out_@HASH@(
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
    const int j0 = 0;
    const DcpWs ws = dcp_ws<C, DK, DV>(ws_raw, (long)gridDim.z * HV * NC);

    for (int e = tid; e < C * DK / 8; e += NT) {
        const int t = e / (DK / 8), x = (e % (DK / 8)) * 8;
        cp_async16(Qs + t * KP + x, ws.qg + (ci * C + t) * DK + x, true);
    }
    for (int e = tid; e < DK * DV / 8; e += NT) {
        const int d = e / (DV / 8), x = (e % (DV / 8)) * 8;
        cp_async16(Hs + d * VP + x, ws.hs + (ci * DK + d) * DV + x, true);
    }
    for (int e = tid; e < C * C / 8; e += NT) {
        const int t = e / (C / 8), x = (e % (C / 8)) * 8;
        cp_async16(As + t * AP + x, ws.aq + (ci * C + t) * C + x, true);
    }
    for (int e = tid; e < C * DV / 8; e += NT) {
        const int t = e / (DV / 8), x = (e % (DV / 8)) * 8;
        cp_async16(Vs + t * VP + x, ws.vn + (ci * C + t) * DV + x, true);
    }
    dtc_cp_wait();
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
