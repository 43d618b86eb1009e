    /* (CpPrepVariant::Compact) kept through the block (the layout of the gate's form follows): */
    bf16* Kb = reinterpret_cast<bf16*>(smem_raw);      /* [C][KP] k e^G                      */
    float* Lf = reinterpret_cast<float*>(Kb + C * KP); /* [C][FP] L                          */
    float* nq = Lf + C * FP;                           /* [C] q row scale                    */
    float* nk = nq + C;                                /* [C] k row scale                    */
    float* bs = nk + C;                                /* [C] beta                           */
    int* flags = reinterpret_cast<int*>(bs + C);       /* diagonal blocks summed exactly     */
    unsigned char* uni = reinterpret_cast<unsigned char*>(flags + 4);
