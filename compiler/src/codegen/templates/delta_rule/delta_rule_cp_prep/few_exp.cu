            /* (CpPrepVariant::FewExp) item e: channels d, d + 1 of rows 16 i + RI h .. + RI - 1
             * (block i; RI = 8 rows at KH = 64, 4 at KH = 32, so that every thread has an item).
             * Per (block, channel) the factors e^G_r, e^(G_last - G_r) and e^(G_r' - G_r) for the
             * later blocks r' (all <= 1); per element two exp2f, e^(G - G_r) <= 1 and
             * e^(G_r - G) < 2^(SPAN_MAX - 1) (an unflagged block), whose products with the
             * factors are the other exponentials (each <= 1: no overflow; an underflowing factor
             * stands for a term below 2^-63). A flagged block takes every exponential directly,
             * as the base form does. */
            constexpr int RI = KH * 32 / NT; /* 4 blocks x 16 / RI row groups x KH / 2 pairs = NT items */
            static_assert(RI == 4 || RI == 8, "KH = 32 or 64");
            for (int e = tid; e < 4 * (16 / RI) * (KH / 2); e += NT) {
                const int d = (e % (KH / 2)) * 2, h = (e / (KH / 2)) % (16 / RI), i = e / ((16 / RI) * (KH / 2));
                const bool direct = (wide >> i) & 1;
                float fr[2], fl[2], fc[2][4];
#pragma unroll
                for (int x = 0; x < 2; ++x) {
                    const float gr = GAT(16 * i, d + x);
                    fr[x] = exp2f(gr);
                    fl[x] = exp2f(GAT(C - 1, d + x) - gr);
#pragma unroll
                    for (int ii = 0; ii < 4; ++ii) fc[x][ii] = ii > i ? exp2f(GAT(16 * ii, d + x) - gr) : 1.0f;
                }
#pragma unroll 2
                for (int r = 0; r < RI; ++r) {
                    const int t = 16 * i + RI * h + r;
                    float qo[2], ko[2], qq[2], kq[2], kb[2];
#pragma unroll
                    for (int x = 0; x < 2; ++x) {
                        const float qv = bf2f(Qr[t * HP + d + x]) * nq[t];
                        const float kv = bf2f(Kr[t * HP + d + x]) * nk[t];
                        const float gt = GAT(t, d + x);
                        const float er = exp2f(gt - GAT(16 * i, d + x));
                        qq[x] = qv * er;
                        kq[x] = kv * er;
                        if (!direct) {
                            const float ie = exp2f(GAT(16 * i, d + x) - gt);
                            const float eg = fr[x] * er;
                            qo[x] = qv * eg;
                            kb[x] = kv * eg;
                            ko[x] = kv * (fl[x] * ie);
#pragma unroll
                            for (int ii = 0; ii < 4; ++ii)
                                if (ii >= i) Kc[(8 * ii * (ii + 1) + t) * HP + d + x] = f2bf(kv * (fc[x][ii] * ie));
                        } else {
                            const float eg = exp2f(gt);
                            qo[x] = qv * eg;
                            kb[x] = kv * eg;
                            ko[x] = kv * exp2f(GAT(C - 1, d + x) - gt);
#pragma unroll
                            for (int ii = 0; ii < 4; ++ii)
                                if (ii >= i) {
                                    const float xx = GAT(16 * ii, d + x) - gt;
                                    Kc[(8 * ii * (ii + 1) + t) * HP + d + x] =
                                        f2bf(kv * exp2f(ii == i ? fminf(xx, SPAN_MAX) : xx));
                                }
                        }
                    }
                    dtc_st2(&Qr[t * HP + d], qq[0], qq[1]);
                    dtc_st2(&Kr[t * HP + d], kq[0], kq[1]);
                    dtc_st2(&Kb[t * KP + d0 + d], kb[0], kb[1]);
                    dtc_st2(&qg[t * DK + d], qo[0], qo[1]);
                    dtc_st2(&kh[t * DK + d], ko[0], ko[1]);
                }
            }
