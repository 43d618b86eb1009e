    /* (CpPrepVariant::EarlySpan) step 0's span loads, issued before the norms' loads are
     * waited for, so that both take one trip to memory (profiled on the H100, the span's own
     * trip and its barrier held about 13% of the prep's warp stalls). Thread (block i, channels
     * 4 c4 .. 4 c4 + 3, half h) loads g's rows 16 i + 1 .. 16 i + 8 (h = 0) or 16 i + 9 ..
     * 16 i + 15 (h = 1) as 16-byte pieces; rows past T read zero. */
    static_assert(PER_CHANNEL && 2 * DK <= NT, "a thread per (block, channel quad, half)");
    const int sp_h = tid & 1, sp_c4 = (tid >> 1) % (DK / 4), sp_i = (tid >> 1) / (DK / 4);
    float4 sp_g[8];
#pragma unroll
    for (int r = 0; r < 8; ++r) {
        const int t = 16 * sp_i + 1 + 8 * sp_h + r;
        sp_g[r] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        if (tid < 2 * DK && r < 8 - sp_h && t < cn) {
            const float* gp = g + (row0 + t) * HV * DK + hv * DK + 4 * sp_c4;
            sp_g[r] = vec_g ? __ldg(reinterpret_cast<const float4*>(gp)) : make_float4(gp[0], gp[1], gp[2], gp[3]);
        }
    }
