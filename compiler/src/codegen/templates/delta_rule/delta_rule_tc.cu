
extern "C" __global__ void __launch_bounds__(@THREADS@) delta_rule_chunked_@HASH@(
    @ARGS@)
{
@CONSTS@    (void)VTAIL;
    constexpr int C = 64;                 /* tokens per chunk                                   */
    constexpr int NW = @THREADS@ / 32;    /* warps: 4 row tiles x NW/4 column groups            */
    constexpr int NT = 32 * NW;
    constexpr int BVW = BV / (NW / 4);    /* value columns per warp                             */
    constexpr int NTW = BVW / 8;          /* n-tiles per warp (even)                            */
    constexpr int MS = DK / 16;           /* m-tiles of the state                               */
    constexpr int MSW = (MS + 3) / 4;     /* state m-tiles per warp                             */
    constexpr int KP = DK + 8;            /* padded rows: [C][DK] bf16                          */
    constexpr int VP = BV + 8;            /* padded rows: [C][BV], [DK][BV] bf16                */
    constexpr int AP = C + 8;             /* padded rows: [C][C] bf16                           */
    constexpr int FP = C + 1;             /* padded rows: [C][C] f32                            */
    constexpr int NG = PER_CHANNEL ? C * DK : C;
    constexpr float LOG2E = 1.4426950408889634f;
    constexpr float SPAN_MAX = 64.0f;     /* largest log2 growth of a diagonal-block factor     */
    extern __shared__ __align__(16) unsigned char smem_raw[];
    /* kept through the chunk */
    bf16* Qt = reinterpret_cast<bf16*>(smem_raw);     /* [C][KP] q e^G                      */
    bf16* Kt = Qt + C * KP;                            /* [C][KP] k e^G                      */
    bf16* Kh = Kt + C * KP;                            /* [C][KP] k e^(G_last - G)           */
    bf16* Ss = Kh + C * KP;                            /* [DK][VP] the state, bf16 copy      */
    bf16* AQ = Ss + DK * VP;                           /* [C][AP] q_t.k_s decay, s <= t      */
    float* Lf = reinterpret_cast<float*>(AQ + C * AP); /* [C][FP] beta_t k_t.k_s decay, s < t */
    float* nq = Lf + C * FP;                           /* [C] q row scale                    */
    float* nk = nq + C;                                /* [C] k row scale                    */
    float* bs = nk + C;                                /* [C] beta                           */
    float* egl = bs + C;                               /* [DK] e^G_last                      */
    float* nss = egl + DK;                             /* [NW/4][C] sums of o^2 per group    */
    int* flags = reinterpret_cast<int*>(nss + (NW / 4) * C); /* diagonal blocks to redo     */
    unsigned char* uni = reinterpret_cast<unsigned char*>(flags + 4);
    /* phase A: staged inputs and the operands of the intra-chunk products */
    float* Gs = reinterpret_cast<float*>(uni);         /* [C][DK] or [C]: g, then log2 cumsum */
    bf16* Qr = reinterpret_cast<bf16*>(Gs + NG);       /* [C][KP] q, then q e^(G - G_r)      */
    bf16* Kr = Qr + C * KP;                            /* [C][KP] k, then k e^(G - G_r)      */
    bf16* Kc = Kr + C * KP;                            /* [160][KP] k e^(G_r - G), per block */
    /* phase B, over phase A: the solve and the state products */
    float* Af = reinterpret_cast<float*>(uni);         /* [C][FP] (I + L)^-1                 */
    float* Tf = Af + C * FP;                           /* [C][FP] scratch                    */
    bf16* Ab = reinterpret_cast<bf16*>(Tf + C * FP);   /* [C][AP] (I + L)^-1, bf16           */
    bf16* Rs = Ab + C * AP;                            /* [C][VP] v, then beta (v - k e^G S) */
    bf16* Vn = Rs + C * VP;                            /* [C][VP] u                          */

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int mr = warp & 3;              /* row tile of the [C][*] products                    */
    const int cg = warp >> 2;             /* column group                                       */
    const int j0 = blockIdx.x * BV;       /* first value column of the block                    */
    const int hv = blockIdx.y;
    const long b = blockIdx.z;
    const int hk = hv / RATIO;
    const long sbase = (b * HV + hv) * (long)DK * DV + j0;
    const int r4 = lane >> 2, c4 = (lane & 3) * 2; /* accumulator row / column within a tile */
    /* 16-byte aligned rows take the cp.async path (any layout works, slower, without). */
    const bool vec_qk = ((reinterpret_cast<unsigned long long>(q) | reinterpret_cast<unsigned long long>(k)) & 15) == 0 &&
                        q_stride % 8 == 0 && k_stride % 8 == 0;
    const bool vec_g = (reinterpret_cast<unsigned long long>(g) & 15) == 0;
    const bool vec_v = (reinterpret_cast<unsigned long long>(v) & 15) == 0 && v_stride % 8 == 0;
#define GAT(t, d) (PER_CHANNEL ? Gs[(t) * DK + (d)] : Gs[t])

    /* The state in mma accumulators: rows 16 (mr + 4m) .., columns cg BVW + 8n .. */
    float st[MSW][NTW][4];
#pragma unroll
    for (int m = 0; m < MSW; ++m) {
        const int ms = mr + 4 * m;
#pragma unroll
        for (int n = 0; n < NTW; ++n)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int d = 16 * ms + r4 + (e >> 1) * 8, col = cg * BVW + 8 * n + c4 + (e & 1);
                st[m][n][e] = ms < MS && state_in ? state_in[sbase + (long)d * DV + col] : 0.0f;
            }
        if (ms < MS)
#pragma unroll
            for (int n = 0; n < NTW; ++n)
#pragma unroll
                for (int h = 0; h < 2; ++h)
                    dtc_st2(&Ss[(16 * ms + r4 + 8 * h) * VP + cg * BVW + 8 * n + c4], st[m][n][2 * h],
                            st[m][n][2 * h + 1]);
    }
    if (tid == 0) flags[0] = 0;

    for (int c0 = 0; c0 < T; c0 += C) {
        const int cn = min(C, T - c0);
        const long row0 = b * T + c0;
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
            /* scan of 64 scalars: two per lane, then a shuffle scan of the pair sums */
            const float a0 = Gs[2 * lane] * LOG2E, a1 = Gs[2 * lane + 1] * LOG2E;
            float s = a0 + a1;
#pragma unroll
            for (int o = 1; o < 32; o <<= 1) {
                const float y = __shfl_up_sync(0xffffffffu, s, o);
                if (lane >= o) s += y;
            }
            Gs[2 * lane] = s - a1;
            Gs[2 * lane + 1] = s;
            __syncwarp();
            if (lane < 4 && Gs[16 * lane] - Gs[16 * lane + 15] > SPAN_MAX) atomicOr(flags, 1 << lane);
        }
        __syncthreads();
        /* 2. bf16 operands, in place over the staged q and k. Every factor is e^x with x <= 0
         *    except on the diagonal blocks of Kc (x <= SPAN_MAX; wider blocks are flagged and
         *    recomputed exactly in step 3b). */
        for (int e = tid; e < C * DK; e += NT) {
            const int t = e / DK, d = e % DK, i = t >> 4;
            const float qv = bf2f(Qr[t * KP + d]) * nq[t];
            const float kv = bf2f(Kr[t * KP + d]) * nk[t];
            const float gt = GAT(t, d);
            const float er = exp2f(gt - GAT(16 * i, d));
            const float eg = exp2f(gt);
            Qr[t * KP + d] = f2bf(qv * er);
            Kr[t * KP + d] = f2bf(kv * er);
            Qt[t * KP + d] = f2bf(qv * eg);
            Kt[t * KP + d] = f2bf(kv * eg);
            Kh[t * KP + d] = f2bf(kv * exp2f(GAT(C - 1, d) - gt));
#pragma unroll
            for (int ii = 0; ii < 4; ++ii)
                if (ii >= i) {
                    const float x = GAT(16 * ii, d) - gt;
                    Kc[(8 * ii * (ii + 1) + t) * KP + d] = f2bf(kv * exp2f(ii == i ? fminf(x, SPAN_MAX) : x));
                }
        }
        for (int d = tid; d < DK; d += NT) egl[d] = exp2f(GAT(C - 1, d));
        __syncthreads();
        /* 3. AQ = (q e^(G - G_r)) (k e^(G_r - G))^T for s <= t and L = beta_t (k e^(G - G_r))
         *    (k e^(G_r - G))^T for s < t: row block i (reference r = 16 i) against Kc_i, whose
         *    rows are the columns 0 .. 16 i + 15. Warp w takes AQ block w and L block 3 - w. */
        for (int job = warp; job < 8; job += NW) {
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
                if (n < 2 * (i + 1))
#pragma unroll
                    for (int e = 0; e < 4; ++e) {
                        const int t = 16 * i + r4 + (e >> 1) * 8, s = 8 * n + c4 + (e & 1);
                        if (isq)
                            AQ[t * AP + s] = f2bf(s <= t ? acc[n][e] : 0.0f);
                        else
                            Lf[t * FP + s] = s < t ? bs[t] * acc[n][e] : 0.0f;
                    }
        }
        __syncthreads();
        /* 3b. diagonal blocks whose decay span exceeds SPAN_MAX: exact sums (rare). The
         *     staged q and k are overwritten, so they are read again from global memory. */
        const int wide = flags[0];
        if (wide) {
            for (int i = 0; i < 4; ++i) {
                if (!((wide >> i) & 1)) continue;
                for (int p = tid; p < 256; p += NT) {
                    const int a = p >> 4, c = p & 15, t = 16 * i + a, s = 16 * i + c;
                    if (c > a) continue;
                    float lq = 0.0f, lk = 0.0f;
                    if (t < cn)
                        for (int d = 0; d < DK; ++d) {
                            const float ks = bf2f(k[(row0 + s) * k_stride + hk * DK + d]) * nk[s];
                            const float e = exp2f(GAT(t, d) - GAT(s, d)) * ks;
                            lq = fmaf(bf2f(q[(row0 + t) * q_stride + hk * DK + d]) * nq[t], e, lq);
                            lk = fmaf(bf2f(k[(row0 + t) * k_stride + hk * DK + d]) * nk[t], e, lk);
                        }
                    AQ[t * AP + s] = f2bf(lq);
                    Lf[t * FP + s] = c < a ? bs[t] * lk : 0.0f;
                }
            }
            __syncthreads();
        }
        /* Phase A is dead: stage v (read in step 5a) while the solve runs. */
        dtc_stage<bf16, C, BV, NT>(Rs, VP, v + row0 * v_stride + hv * DV + j0, v_stride, cn, vec_v, tid);
        /* 4. (I + L)^-1 in f32 (dtc_ut_inverse). */
        if (tid == 0) flags[0] = 0; /* every thread has read it (see 3b) */
        dtc_ut_inverse<C, FP, NT, false>(Lf, Af, Tf, tid);
        for (int e = tid; e < C * C; e += NT) {
            const int t = e / C, s = e % C;
            Ab[t * AP + s] = f2bf(s <= t ? Af[t * FP + s] : 0.0f);
        }
        dtc_cp_wait();
        __syncthreads();
        /* 5a. R = beta (V - (k e^G) S), in place over the staged v */
        float acc[NTW][4];
#pragma unroll
        for (int n = 0; n < NTW; ++n)
#pragma unroll
            for (int e = 0; e < 4; ++e) acc[n][e] = 0.0f;
#pragma unroll
        for (int kk = 0; kk < MS; ++kk) {
            unsigned a[4];
            dtc_frag_a(a, Kt, KP, 16 * mr, 16 * kk, lane);
#pragma unroll
            for (int np = 0; np < NTW / 2; ++np) {
                unsigned bb[4];
                dtc_frag_bt(bb, Ss, VP, cg * BVW + 16 * np, 16 * kk, lane);
                mma_bf16(acc[2 * np], a, bb[0], bb[1]);
                mma_bf16(acc[2 * np + 1], a, bb[2], bb[3]);
            }
        }
#pragma unroll
        for (int n = 0; n < NTW; ++n)
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                const int t = 16 * mr + r4 + 8 * h, col = cg * BVW + 8 * n + c4;
                const float bt = bs[t];
                const float v0 = bf2f(Rs[t * VP + col]), v1 = bf2f(Rs[t * VP + col + 1]);
                dtc_st2(&Rs[t * VP + col], bt * (v0 - acc[n][2 * h]), bt * (v1 - acc[n][2 * h + 1]));
            }
        __syncthreads();
        /* 5b. u = (I + L)^-1 R (lower triangular: k tiles up to the row tile) */
#pragma unroll
        for (int n = 0; n < NTW; ++n)
#pragma unroll
            for (int e = 0; e < 4; ++e) acc[n][e] = 0.0f;
#pragma unroll
        for (int kk = 0; kk < 4; ++kk)
            if (kk <= mr) {
                unsigned a[4];
                dtc_frag_a(a, Ab, AP, 16 * mr, 16 * kk, lane);
#pragma unroll
                for (int np = 0; np < NTW / 2; ++np) {
                    unsigned bb[4];
                    dtc_frag_bt(bb, Rs, VP, cg * BVW + 16 * np, 16 * kk, lane);
                    mma_bf16(acc[2 * np], a, bb[0], bb[1]);
                    mma_bf16(acc[2 * np + 1], a, bb[2], bb[3]);
                }
            }
#pragma unroll
        for (int n = 0; n < NTW; ++n)
#pragma unroll
            for (int h = 0; h < 2; ++h)
                dtc_st2(&Vn[(16 * mr + r4 + 8 * h) * VP + cg * BVW + 8 * n + c4], acc[n][2 * h], acc[n][2 * h + 1]);
        __syncthreads();
        /* 5c. o = (q e^G) S + AQ u */
#pragma unroll
        for (int n = 0; n < NTW; ++n)
#pragma unroll
            for (int e = 0; e < 4; ++e) acc[n][e] = 0.0f;
#pragma unroll
        for (int kk = 0; kk < MS; ++kk) {
            unsigned a[4];
            dtc_frag_a(a, Qt, KP, 16 * mr, 16 * kk, lane);
#pragma unroll
            for (int np = 0; np < NTW / 2; ++np) {
                unsigned bb[4];
                dtc_frag_bt(bb, Ss, VP, cg * BVW + 16 * np, 16 * kk, lane);
                mma_bf16(acc[2 * np], a, bb[0], bb[1]);
                mma_bf16(acc[2 * np + 1], a, bb[2], bb[3]);
            }
        }
#pragma unroll
        for (int kk = 0; kk < 4; ++kk)
            if (kk <= mr) {
                unsigned a[4];
                dtc_frag_a(a, AQ, AP, 16 * mr, 16 * kk, lane);
#pragma unroll
                for (int np = 0; np < NTW / 2; ++np) {
                    unsigned bb[4];
                    dtc_frag_bt(bb, Vn, VP, cg * BVW + 16 * np, 16 * kk, lane);
                    mma_bf16(acc[2 * np], a, bb[0], bb[1]);
                    mma_bf16(acc[2 * np + 1], a, bb[2], bb[3]);
                }
            }
@STORE@
        __syncthreads(); /* every warp is done reading Ss */
        /* 5d. S <- e^G_last S + (k e^(G_last - G))^T u */
#pragma unroll
        for (int m = 0; m < MSW; ++m) {
            const int ms = mr + 4 * m;
            if (ms < MS) {
                const float e0 = egl[16 * ms + r4], e1 = egl[16 * ms + r4 + 8];
#pragma unroll
                for (int n = 0; n < NTW; ++n) {
                    st[m][n][0] *= e0;
                    st[m][n][1] *= e0;
                    st[m][n][2] *= e1;
                    st[m][n][3] *= e1;
                }
#pragma unroll
                for (int kk = 0; kk < 4; ++kk) {
                    unsigned a[4];
                    dtc_frag_at(a, Kh, KP, 16 * ms, 16 * kk, lane);
#pragma unroll
                    for (int np = 0; np < NTW / 2; ++np) {
                        unsigned bb[4];
                        dtc_frag_bt(bb, Vn, VP, cg * BVW + 16 * np, 16 * kk, lane);
                        mma_bf16(st[m][2 * np], a, bb[0], bb[1]);
                        mma_bf16(st[m][2 * np + 1], a, bb[2], bb[3]);
                    }
                }
#pragma unroll
                for (int n = 0; n < NTW; ++n)
#pragma unroll
                    for (int h = 0; h < 2; ++h)
                        dtc_st2(&Ss[(16 * ms + r4 + 8 * h) * VP + cg * BVW + 8 * n + c4], st[m][n][2 * h],
                                st[m][n][2 * h + 1]);
            }
        }
        __syncthreads(); /* the next chunk restages phase A and reads Ss */
    }
    if (state_out) {
#pragma unroll
        for (int m = 0; m < MSW; ++m) {
            const int ms = mr + 4 * m;
            if (ms < MS)
#pragma unroll
                for (int n = 0; n < NTW; ++n)
#pragma unroll
                    for (int e = 0; e < 4; ++e) {
                        const int d = 16 * ms + r4 + (e >> 1) * 8, col = cg * BVW + 8 * n + c4 + (e & 1);
                        state_out[sbase + (long)d * DV + col] = st[m][n][e];
                    }
        }
    }
#undef GAT
}
