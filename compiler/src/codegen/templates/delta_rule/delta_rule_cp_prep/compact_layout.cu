    /* (CpPrepVariant::Compact, a scalar gate) 75,536 bytes at Dk = Dv = 128, so that three
     * blocks fit an SM: no reference copies (ScalarRaw takes none; their place holds the later
     * passes' q and k, as in EarlyStage) and no exact diagonal blocks (nothing is flagged); A_qk
     * over the first pass's q once the passes are done, (I + L)^-1 over both once A_qk is
     * stored, (I + L)^-1 diag(beta) over L, the inverse's products T in its own upper triangle. */
    /* phase A, per pass of KH channels */
    float* Gs = reinterpret_cast<float*>(uni);         /* [C]: g, then log2 cumsum           */
    float* Ex = Gs + C;                                /* [7][C] step 4's factors            */
    float* Gb = Gs + NG;                               /* [4][KH] (a per-channel gate's)     */
    bf16* Qr = reinterpret_cast<bf16*>(Gb + 4 * KH);   /* [C][HP] the first pass's q         */
    bf16* Kr = Qr + C * HP;                            /* [C][HP] the first pass's k         */
    bf16* Kc = Kr + C * HP;                            /* [NPASS - 1][2][C][HP] later q, k   */
    float* Xq = Gs;                                    /* (no exact blocks)                  */
    float* Xk = Gs;
    /* phase B, over phase A */
    bf16* AQ = Qr;                                     /* [C][AP] A_qk (the first q's place) */
    float* Af = reinterpret_cast<float*>(uni);         /* [C][FP] (I + L)^-1 and its T       */
    float* Tf = Af;
    bf16* Ab = reinterpret_cast<bf16*>(Lf);            /* [C][AP] (I + L)^-1 diag(beta)      */
    bf16* Vb = reinterpret_cast<bf16*>(Af + C * FP);   /* [C][VP] v                          */
    static_assert(!PER_CHANNEL && C * AP * 2 <= C * FP * 4 && C * (DK + 8) * 2 <= C * FP * 4 &&
                      C * (DV + 8) * 2 <= C * FP * 4 && NG * 4 + 4 * KH * 4 + C * AP * 2 <= C * FP * 4,
                  "(Compact) a scalar gate; A_qk, Ab and the W and U tiles each within Af or Lf");
