    /* (CpPrepVariant::EarlyLoads) the spans' loads before the norms' (both in flight at once);
     * the flags are set after the barrier below */
    int wmask = 0;
    for (int e = tid; e < 4 * (PER_CHANNEL ? DK : 1); e += NT) {
        const int i = PER_CHANNEL ? e / DK : e, d = PER_CHANNEL ? e % DK : 0;
        float span = 0.0f;
#pragma unroll
        for (int r = 1; r < 16; ++r) {
            const int t = 16 * i + r;
            if (t < cn)
                span -= (PER_CHANNEL ? g[(row0 + t) * HV * DK + hv * DK + d] : g[(row0 + t) * HV + hv]) * LOG2E;
        }
        if (span > SPAN_MAX - 1.0f) wmask |= 1 << i;
    }
