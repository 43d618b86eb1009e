
/*
 * delta_rule_cp_scan_out_@HASH@: passes 2 and 3 in one, the state scan with the output of each
 *   chunk computed where its state and v_new already are, so that neither goes through the
 *   workspace (the three-pass form writes and reads back h and v_new: about half its scan's and
 *   output pass's DRAM bytes).
 *   One block per (SBV value columns, value head, batch), as the scan. Per chunk c, with h the
 *   state entering it (f32 in mma accumulators, a bf16 copy Ss in shared memory):
 *     v_new = U - W h and o = (q e^G) h    (one pass over Ss: the two products share its fragments)
 *     o += A_qk v_new                      (rows' lower triangle)
 *     h <- diag(e^G_last) h + (k e^(G_last - G))^T v_new
 *   then o (SBV columns of the chunk's rows) goes out through shared memory two chunks later.
 *   With the gated RMSNorm, a row's sum of o^2 spans the head's DV / SBV blocks, which send
 *   their partial sums before each state update: as a cluster (NCL blocks, sm_90),
 *   asynchronous stores into every block's shared memory completing on its mbarrier; or
 *   through the workspace, with a count per chunk that the head's blocks wait on. Through the
 *   workspace a block takes its (column slice, head, sequence) from a ticket, the order blocks
 *   start in: a head's blocks start one after another, and a block waits only on blocks that
 *   have started or start once a whole head has finished, so the grid may exceed what the
 *   device holds at once (waves), as long as it holds a head's DV / SBV blocks.
 *   Either way a block waits one chunk later: chunk c's o is normalised and written to Os
 *   during chunk c + 1, and stored at the top of chunk c + 2. The cluster keeps four slots of
 *   row sums and mbarriers (chunk c % 4): a block sends chunk c + 4's sums only after
 *   receiving this block's of chunk c + 3, sent after it read chunk c's.
 *   The next chunks' operands (W, k e^(G_last - G), q e^G, A_qk, U, e^G_last and the gate
 *   rows) are prefetched with cp.async into NBUF buffers.
 * Grid (DV / SBV, Hv, B), block 256 threads (8 warps), dynamic smem as
 *   delta_rule_cp_scan_out_launch() says.
 */
template <int SBV, int NBUF> /* value columns per block; chunks in flight */
__device__ __forceinline__ void delta_rule_cp_scan_out_body_@HASH@(
    @ARGS@)
{
@CONSTS@    (void)VTAIL; (void)q; (void)q_stride; (void)k; (void)k_stride; (void)v; (void)v_stride;
    (void)g; (void)beta;
    constexpr bool NORM = @NORM@;         /* the gated RMSNorm epilogue                        */
    constexpr bool CLUSTER = @CLUSTER@;   /* NORM over a cluster of NCL > 1 blocks (sm_90)      */
    constexpr int C = 64;
    constexpr int NW = 8;
    constexpr int NT = 32 * NW;
    constexpr int NTS = SBV / 8;          /* n tiles of the state (even)                       */
    constexpr int NPW = NTS / 2;          /* n tiles per warp of v_new and o (a column half)   */
    constexpr int MS = DK / 16;
    constexpr int MSW = (MS + NW - 1) / NW;
    constexpr int KP = DK + 8;
    constexpr int SP = SBV + 8;
    constexpr int AP = C + 8;
    constexpr int NCL = DV / SBV;         /* blocks of a head (a cluster with the norm)        */
    static_assert(NBUF == 2 || NBUF == 3, "two or three buffers");
    static_assert(!NORM || NCL == 1 || NCL == 2 || NCL == 4 || NCL == 8, "cluster of 1, 2, 4 or 8");
    extern __shared__ __align__(16) unsigned char smem_raw[];
    bf16* Ss = reinterpret_cast<bf16*>(smem_raw);      /* [DK][SP] h, bf16                   */
    bf16* Vn = Ss + DK * SP;                           /* [C][SP] v_new                      */
    bf16* Os = Vn + C * SP;                            /* [C][SP] o, stored a chunk later    */
    bf16* Wb = Os + C * SP;                            /* [NBUF][C][KP] W                    */
    bf16* Kb = Wb + NBUF * C * KP;                     /* [NBUF][C][KP] k e^(G_last - G)     */
    bf16* Qb = Kb + NBUF * C * KP;                     /* [NBUF][C][KP] q e^G                */
    bf16* Ab = Qb + NBUF * C * KP;                     /* [NBUF][C][AP] A_qk                 */
    bf16* Ub = Ab + NBUF * C * AP;                     /* [NBUF][C][SP] U                    */
    bf16* Zb = Ub + NBUF * C * SP;                     /* [NBUF][C][SP] the gate rows (NORM) */
    float* Eb = reinterpret_cast<float*>(Zb + (NORM ? NBUF * C * SP : 0)); /* [NBUF][DK] e^G_last */
    float* Rs = Eb + NBUF * DK;                        /* NORM: [4][NCL][2][C] row sums of o^2 */
    /* NORM, NCL > 1: [4] mbarriers (the cluster's exchange) or the block's ticket (the workspace's) */
    unsigned long long* Pb = reinterpret_cast<unsigned long long*>(Rs + 8 * NCL * C);
    (void)Zb; (void)Rs; (void)Pb;

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int r4 = lane >> 2, c4 = (lane & 3) * 2;
    const int mr = warp & 3, nh = warp >> 2; /* v_new and o: row tile, column half            */
    const int NC = (T + C - 1) / C;
    const DcpWs ws = dcp_ws<C, DK, DV>(ws_raw, (long)gridDim.z * HV * NC);
    /* the block's value columns j0.., value head hv and sequence b: blockIdx's, or with the
     * exchange through the workspace its ticket's (the order blocks start in) */
@PLACE@    const long bh = b * HV + hv;
    const long sbase = bh * (long)DK * DV + j0;

    /* chunk c's operands into buffer p (one commit group) */
    auto stage = [&](int c, int p) {
        const long ci = bh * NC + c;
        for (int e = tid; e < C * DK / 8; e += NT) {
            const int t = e / (DK / 8), x = (e % (DK / 8)) * 8;
            cp_async16(Wb + (p * C + t) * KP + x, ws.w + (ci * C + t) * DK + x, true);
            cp_async16(Kb + (p * C + t) * KP + x, ws.kh + (ci * C + t) * DK + x, true);
            cp_async16(Qb + (p * C + t) * KP + x, ws.qg + (ci * C + t) * DK + x, true);
        }
        for (int e = tid; e < C * C / 8; e += NT) {
            const int t = e / (C / 8), x = (e % (C / 8)) * 8;
            cp_async16(Ab + (p * C + t) * AP + x, ws.aq + (ci * C + t) * C + x, true);
        }
        for (int e = tid; e < C * SBV / 8; e += NT) {
            const int t = e / (SBV / 8), x = (e % (SBV / 8)) * 8;
            cp_async16(Ub + (p * C + t) * SP + x, ws.u + (ci * C + t) * DV + j0 + x, true);
        }
        for (int e = tid; e < DK / 4; e += NT) cp_async16(Eb + p * DK + 4 * e, ws.egl + ci * DK + 4 * e, true);
@GATE_STAGE@        cp_async_commit();
    };
    /* chunk c's o (in Os) to its rows of the output */
    auto store_o = [&](int c) {
        const int cn = min(C, T - c * C);
        dcp_store_rows<C, SBV, NT>(o + (b * T + c * C) * o_stride + hv * DV + j0, o_stride, Os, SP, cn, tid);
    };

    float st[MSW][NTS][4];
    dcp_state_load<DK, DV, SBV, NW, MSW>(st, Ss, state_in, sbase, warp, lane);
    if constexpr (CLUSTER) {
        /* Pb[c & 3]: chunk c's row sums have landed from every block of the cluster (one arrival,
         * thread 0's expect_tx; the bytes of NCL blocks' asynchronous stores) */
        if (tid == 0) {
            for (int i = 0; i < 4; ++i) mbar_init(Pb + i, 1);
            MODELC_SM90_ASM("fence.mbarrier_init.release.cluster;" ::: "memory");
        }
        cluster_sync(); /* every block runs, its barriers set, before a row sum lands in it */
    }
    /* chunk c's o (f32) and gate values (NORM) until the next chunk writes them to Os */
    float ao_prev[NPW][4], z_prev[NPW][4];
    (void)z_prev;
    /* chunk ce's o from ao_prev into Os (with the norm: once every block's row sums are in) */
    auto epilogue = [&](int ce) {
@O_EPILOGUE@    };
    for (int i = 0; i < NBUF - 1 && i < NC; ++i) stage(i, i);
    for (int c = 0; c < NC; ++c) {
        const int p = c % NBUF;
        /* chunk c + NBUF - 1 into the buffer chunk c - 1 used (free since the last barrier), then
         * wait for chunk c's group: the groups committed after it may stay in flight */
        if (c + NBUF - 1 < NC) {
            stage(c + NBUF - 1, (c + NBUF - 1) % NBUF);
            cp_async_wait<NBUF - 1>();
        } else if (NBUF == 3 && c + 1 < NC) {
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        __syncthreads(); /* buffer p, Ss and chunk c - 2's o are ready */
        if (c > 1) store_o(c - 2);
        const bf16* W = Wb + p * C * KP;
        const bf16* K = Kb + p * C * KP;
        const bf16* Q = Qb + p * C * KP;
        const bf16* A = Ab + p * C * AP;
        const bf16* U = Ub + p * C * SP;
        const bf16* Z = Zb + p * C * SP;
        const float* E = Eb + p * DK;
        (void)Z;
        /* v_new = U - W h and o = (q e^G) h: row tile mr, n tiles nh NPW .. (nh + 1) NPW - 1 */
        float ao[NPW][4];
        {
            float acc[NPW][4];
#pragma unroll
            for (int n = 0; n < NPW; ++n)
#pragma unroll
                for (int e = 0; e < 4; ++e) acc[n][e] = ao[n][e] = 0.0f;
#pragma unroll
            for (int kk = 0; kk < MS; ++kk) {
                unsigned a[4], aq[4];
                dtc_frag_a(a, W, KP, 16 * mr, 16 * kk, lane);
                dtc_frag_a(aq, Q, KP, 16 * mr, 16 * kk, lane);
                dcp_mma_half2<NPW, true>(acc, a, ao, aq, Ss, SP, nh, kk, lane);
            }
            dcp_store_vnew<NPW>(Vn, U, acc, SP, mr, nh, r4, c4);
        }
        __syncthreads(); /* Vn complete; every warp is done reading Ss and Os */
        /* o += A_qk v_new (A_qk is zero above the diagonal: k tiles up to the row tile) */
#pragma unroll
        for (int kk = 0; kk < 4; ++kk)
            if (kk <= mr) {
                unsigned a[4];
                dtc_frag_a(a, A, AP, 16 * mr, 16 * kk, lane);
                dcp_mma_half<NPW>(ao, a, Vn, SP, nh, kk, lane);
            }
@NORM_PARTIALS@        /* h <- e^G_last h + (k e^(G_last - G))^T v_new */
        dcp_state_update<DK, SBV, NW, MSW, KP>(st, Ss, E, K, Vn, warp, lane);
        /* the previous chunk's o into Os (its row sums have had a chunk's time to arrive); this
         * chunk's kept for the next */
        if (c > 0) epilogue(c - 1);
#pragma unroll
        for (int n = 0; n < NPW; ++n)
#pragma unroll
            for (int e = 0; e < 4; ++e) ao_prev[n][e] = ao[n][e];
@KEEP_GATE@        __syncthreads(); /* Ss and Os written; Vn and buffer p free */
    }
    if (NC > 1) store_o(NC - 2);
    __syncthreads(); /* Os is free */
    if (NC > 0) {
        epilogue(NC - 1);
        __syncthreads();
        store_o(NC - 1);
    }
    if constexpr (CLUSTER) {
        /* no block leaves while a store of it into another may be in flight: every block has
         * received all it waits for once all have arrived here */
        cluster_arrive_relaxed();
        cluster_wait();
    }
    dcp_state_store<DK, DV, SBV, NW, MSW>(st, state_out, sbase, warp, lane);
}
