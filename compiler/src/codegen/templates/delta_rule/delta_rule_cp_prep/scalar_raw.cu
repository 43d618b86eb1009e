            /* (CpPrepVariant::ScalarRaw, a scalar gate) q and k stay undecayed for the intra-chunk
             * products, which step 6 scales by e^(G_t - G_s) <= 1; the other operands from the
             * per-row factors of Ex. No reference copies Kc. */
            for (int e = tid; e < C * KH / 2; e += NT) {
                const int t = e / (KH / 2), d = (e % (KH / 2)) * 2;
                float qo[2], ko[2], qq[2], kq[2], kb[2];
#pragma unroll
                for (int x = 0; x < 2; ++x) {
                    qq[x] = bf2f(Qr[t * HP + d + x]) * nq[t];
                    kq[x] = bf2f(Kr[t * HP + d + x]) * nk[t];
                    qo[x] = qq[x] * Ex[C + t];
                    kb[x] = kq[x] * Ex[C + t];
                    ko[x] = kq[x] * Ex[2 * C + t];
                }
                dtc_st2(&Qr[t * HP + d], qq[0], qq[1]);
                dtc_st2(&Kr[t * HP + d], kq[0], kq[1]);
                dtc_st2(&Kb[t * KP + d0 + d], kb[0], kb[1]);
                dtc_st2(&qg[t * DK + d], qo[0], qo[1]);
                dtc_st2(&kh[t * DK + d], ko[0], ko[1]);
            }
