    /* (CpPrepVariant::EarlyStage) the later passes' q and k channels, staged now into the
     * reference copies' rows (a scalar gate's products take none), so that they are in flight
     * with the first pass's and no later pass waits for a copy (profiled on the H100, the
     * second pass's staging, its wait and the barriers around it held about 5% of the GDN
     * prep's warp stalls) */
    static_assert(!PER_CHANNEL && (NPASS - 1) * 2 * C <= 160, "every later pass in Kc's rows");
#pragma unroll 1
    for (int p = 1; p < NPASS; ++p) {
        bf16* Qp = Kc + (p - 1) * 2 * C * HP;
        dtc_stage<bf16, C, KH, NT>(Qp, HP, q + row0 * q_stride + hk * DK + p * KH, q_stride, cn, vec_qk, tid);
        dtc_stage<bf16, C, KH, NT>(Qp + C * HP, HP, k + row0 * k_stride + hk * DK + p * KH, k_stride, cn, vec_qk, tid);
    }
