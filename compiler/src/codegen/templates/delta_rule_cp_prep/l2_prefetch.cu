    /* (CpPrepVariant::L2Prefetch) the inputs of the block that will most likely take this
     * block's place one resident round later (linear block id + 2 x SMs: two blocks an SM, in
     * launch order) into L2 now, so that its first trip to memory is an L2 hit (profiled on the
     * H100, step 0's loads and the barriers behind them held about 30% of the prep's warp
     * stalls). Thread (part, row): q, k, v or g's row (bulk prefetches, sm_90), and row's
     * 16-byte pieces of beta and of a scalar g (the 16 bytes around the element). */
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    {
        static_assert(NT == 4 * C, "a thread per (part, row)");
        unsigned nsm;
        asm("mov.u32 %0, %%nsmid;" : "=r"(nsm));
        const long next = blockIdx.x + (long)gridDim.x * (blockIdx.y + (long)gridDim.y * blockIdx.z) + 2l * nsm;
        const int t = tid % C, part = tid / C;
        const long xn = next % gridDim.x, yz = next / gridDim.x;
        const int hvn = (int)(yz % gridDim.y);
        const long bn = yz / gridDim.y, rown = bn * T + xn * C + t;
        auto prefetch = [](const void* p, unsigned bytes) {
            asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(p), "r"(bytes) : "memory");
        };
        auto piece = [](const float* p) { return reinterpret_cast<const void*>(reinterpret_cast<unsigned long long>(p) & ~15ull); };
        if (bn < gridDim.z && xn * C + t < T) {
            if (part == 0 && vec_qk) prefetch(q + rown * q_stride + (hvn / RATIO) * DK, DK * 2);
            if (part == 1 && vec_qk) prefetch(k + rown * k_stride + (hvn / RATIO) * DK, DK * 2);
            if (part == 2 && vec_v) prefetch(v + rown * v_stride + hvn * DV, DV * 2);
            if (part == 3) {
                if (PER_CHANNEL && vec_g) prefetch(g + rown * HV * DK + hvn * DK, DK * 4);
                if (!PER_CHANNEL) prefetch(piece(g + rown * HV + hvn), 16);
                prefetch(piece(beta + rown * HV + hvn), 16);
            }
        }
    }
#endif
