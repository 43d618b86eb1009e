    /* (CpPrepVariant::EarlySpan) the spans from the loads issued before the norms: a (block,
     * quad)'s two halves are adjacent lanes; a warp's flags meet in one atomicOr */
    {
        float sp[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
        for (int r = 0; r < 8; ++r) {
            sp[0] += sp_g[r].x;
            sp[1] += sp_g[r].y;
            sp[2] += sp_g[r].z;
            sp[3] += sp_g[r].w;
        }
        int bits = 0;
#pragma unroll
        for (int c = 0; c < 4; ++c) {
            sp[c] += __shfl_xor_sync(0xffffffffu, sp[c], 1);
            if (tid < 2 * DK && sp_h == 0 && -sp[c] * LOG2E > SPAN_MAX - 1.0f) bits = 1 << sp_i;
        }
        bits = __reduce_or_sync(0xffffffffu, bits);
        __syncthreads(); /* flags[0] = 0 before the atomicOr */
        if (lane == 0 && bits) atomicOr(flags, bits);
    }
    __syncthreads();
