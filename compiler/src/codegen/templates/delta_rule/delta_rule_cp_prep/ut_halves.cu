#ifndef MODELC_DCP_UT_HALVES
#define MODELC_DCP_UT_HALVES
/* (CpPrepVariant::UtHalves) (I + L)^-1 as dtc_ut_inverse<C, FP, NT, true> defines it, by halves:
 * the 16x16 diagonal blocks, then blocks (1,0) and (3,2) of the two 32x32 halves, then the block
 * of the lower half below the upper one, Ai_hl = -Ai_hh (L_hl Ai_ll), with every thread busy in
 * that last step. Five phases and four barriers where the order by block distance takes seven
 * and six, and a critical path of 96 multiply-adds a row instead of 144 (the UT inverse held
 * 11-13% of the prep's warp stalls on the H100, 2026-12-07). Blocks above the diagonal are never
 * read as part of the inverse (only T_IN_AF writes there, below). Ends with a barrier. */
template <int C, int FP, int NT, bool T_IN_AF = false>
__device__ __forceinline__ void dcp_ut_inverse_halves(const float* Lf, float* Af, float* Tf, int tid) {
    static_assert(C == 64 && NT == 256 && FP % 4 == 0, "four 16x16 blocks; a thread per row quad of a 32x32 block");
    /* T_IN_AF (CpPrepVariant::Compact): the products T go to Af's upper triangle, which no
     * phase reads or writes otherwise: T's blocks (1,0) and (3,2) to Af's (0,1) and (2,3), T's
     * rows 32 .. 63 by columns 0 .. 31 to Af's rows 0 .. 31 by columns 32 .. 63. */
    float* Tq = T_IN_AF ? Af - 16 * FP + 16 : Tf;
    float* Th = T_IN_AF ? Af - 32 * FP + 32 : Tf;
    dtc_ut_diagonal<C, FP>(Lf, Af, tid);
    __syncthreads();
    /* blocks (1,0) and (3,2): item tid < 128 = (block i = 1 or 3, row a, columns c0 .. c0 + 3);
     * T = L_(i,i-1) Ai_(i-1,i-1), then Ai_(i,i-1) = -Ai_ii T */
    const int pi = 1 + 2 * (tid >> 6), pa = (tid >> 2) & 15, pc = (tid & 3) * 4;
    if (tid < 128) {
        float4 acc = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        dtc_mac4<FP>(acc, Lf + (16 * pi + pa) * FP + 16 * (pi - 1), Af + 16 * (pi - 1) * FP + 16 * (pi - 1) + pc, 16);
        *reinterpret_cast<float4*>(Tq + (16 * pi + pa) * FP + 16 * (pi - 1) + pc) = acc;
    }
    __syncthreads();
    if (tid < 128) {
        float4 acc = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        dtc_mac4<FP>(acc, Af + (16 * pi + pa) * FP + 16 * pi, Tq + 16 * pi * FP + 16 * (pi - 1) + pc, 16);
        *reinterpret_cast<float4*>(Af + (16 * pi + pa) * FP + 16 * (pi - 1) + pc) =
            make_float4(-acc.x, -acc.y, -acc.z, -acc.w);
    }
    __syncthreads();
    /* rows 32 .. 63 by columns 0 .. 31, thread (row r, columns c0 .. c0 + 3): T = L_hl Ai_ll
     * (a column of block 1 sums over block 1's rows only), then Ai_hl = -Ai_hh T (a row of block
     * 2 sums over block 2's columns only) */
    const int hr = 32 + (tid >> 3), hc = (tid & 7) * 4;
    {
        const int k0 = hc < 16 ? 0 : 16;
        float4 acc = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        dtc_mac4<FP>(acc, Lf + hr * FP + k0, Af + k0 * FP + hc, 32 - k0);
        *reinterpret_cast<float4*>(Th + hr * FP + hc) = acc;
    }
    __syncthreads();
    {
        float4 acc = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        dtc_mac4<FP>(acc, Af + hr * FP + 32, Th + 32 * FP + hc, hr < 48 ? 16 : 32);
        *reinterpret_cast<float4*>(Af + hr * FP + hc) = make_float4(-acc.x, -acc.y, -acc.z, -acc.w);
    }
    __syncthreads();
}
#endif

