            /* (CpPrepVariant::ScalarRaw) the two per-row factors its step 4 reads: e^G_t and
             * e^(G_last - G_t) */
#pragma unroll
            for (int x = 0; x < 2; ++x) {
                const int t = 2 * lane + x;
                Ex[C + t] = exp2f(Gs[t]);
                Ex[2 * C + t] = exp2f(Gs[C - 1] - Gs[t]);
            }
