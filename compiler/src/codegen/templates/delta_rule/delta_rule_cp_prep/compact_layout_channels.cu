    /* (CpPrepVariant::Compact, a per-channel gate) 75,536 bytes at Dk = Dv = 128, so that three
     * blocks fit an SM: key channels in passes of 32 (KH below, four passes at Dk = 128), A_qk
     * over g once the passes are done, (I + L)^-1 over it once A_qk is stored, (I + L)^-1
     * diag(beta) over L, the inverse's products T in its own upper triangle. */
    /* phase A, per pass of KH channels, then the exact diagonal-block sums across the passes */
    float* Gs = reinterpret_cast<float*>(uni);         /* [C][KH]: g, then log2 cumsum       */
    float* Ex = Gs + C;                                /* (a scalar gate's)                  */
    float* Gb = Gs + NG;                               /* [4][KH] per-block sums of g        */
    bf16* Qr = reinterpret_cast<bf16*>(Gb + 4 * KH);   /* [C][HP] q, then q e^(G - G_r)      */
    bf16* Kr = Qr + C * HP;                            /* [C][HP] k, then k e^(G - G_r)      */
    bf16* Kc = Kr + C * HP;                            /* [160][HP] k e^(G_r - G), per block */
    float* Xq = reinterpret_cast<float*>(Kc + 160 * HP); /* [4][16][16] exact A_qk blocks    */
    float* Xk = Xq + 4 * 256;                          /* [4][16][16] exact L blocks         */
    /* phase B, over phase A */
    bf16* AQ = reinterpret_cast<bf16*>(uni);           /* [C][AP] A_qk (g's place)           */
    float* Af = reinterpret_cast<float*>(uni);         /* [C][FP] (I + L)^-1 and its T       */
    float* Tf = Af;
    bf16* Ab = reinterpret_cast<bf16*>(Lf);            /* [C][AP] (I + L)^-1 diag(beta)      */
    bf16* Vb = reinterpret_cast<bf16*>(Af + C * FP);   /* [C][VP] v                          */
    static_assert(PER_CHANNEL && KH == 32 && C * AP * 2 <= (NG + 4 * KH) * 4 + (2 * C + 160) * HP * 2 &&
                      C * AP * 2 <= C * FP * 4 && C * (DK + 8) * 2 <= C * FP * 4 && C * (DV + 8) * 2 <= C * FP * 4,
                  "(Compact) passes of 32 channels; A_qk below the exact blocks; Ab and the W and U tiles "
                  "each within Af or Lf");
