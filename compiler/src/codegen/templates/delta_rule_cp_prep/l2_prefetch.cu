    /* (CpPrepVariant::EarlyLoads) warm L2 with what later steps read from global memory: v
     * (staged during the solve) and, per channel, the g channels of the later passes (read by
     * step 0's spans and the later stages). A hint: no data moves to the SM; every address lies
     * in a row's range. */
    {
        constexpr int VL = (DV * 2 + 127) / 128;
        const char* vrow = reinterpret_cast<const char*>(v + row0 * v_stride + hv * DV);
        for (int e = tid; e < C * VL; e += NT) {
            const int t = e / VL, x = e % VL;
            if (t < cn) asm volatile("prefetch.global.L2 [%0];" ::"l"(vrow + (long)t * v_stride * 2 + min(128 * x, DV * 2 - 2)));
        }
        if (PER_CHANNEL && NPASS > 1) {
            constexpr int GL = ((DK - KH) * 4 + 127) / 128;
            const char* grow = reinterpret_cast<const char*>(g + row0 * HV * DK + hv * DK + KH);
            for (int e = tid; e < C * GL; e += NT) {
                const int t = e / GL, x = e % GL;
                if (t < cn) asm volatile("prefetch.global.L2 [%0];" ::"l"(grow + (long)t * HV * DK * 4 + min(128 * x, (DK - KH) * 4 - 4)));
            }
        }
    }
