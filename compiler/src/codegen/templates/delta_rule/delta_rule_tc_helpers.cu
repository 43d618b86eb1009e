#ifndef MODELC_DELTA_TC_HELPERS
#define MODELC_DELTA_TC_HELPERS
/* Fragment loads and staging on top of MODELC_MMA_PRELUDE. Tiles are 16x16 bf16 in shared memory
 * rows padded to a multiple of 8 elements (16-byte aligned ldmatrix rows, conflict-free for the
 * paddings used here). */
/* A fragment (rows m0.., columns k0..) of a row-major [m][k] tile. */
__device__ __forceinline__ void dtc_frag_a(unsigned (&a)[4], const bf16* base, int ld, int m0, int k0, int lane) {
    ldmatrix_x4(a, base + (m0 + (lane & 15)) * ld + k0 + (lane >> 4) * 8);
}
/* A fragment of X^T, X stored [k][m]. */
__device__ __forceinline__ void dtc_frag_at(unsigned (&a)[4], const bf16* base, int ld, int m0, int k0, int lane) {
    const int q = lane >> 3, r = lane & 7;
    ldmatrix_x4_trans(a, base + (k0 + r + (q >> 1) * 8) * ld + m0 + (q & 1) * 8);
}
/* B fragments of the n-tiles n0 (b[0..1]) and n0 + 8 (b[2..3]) for k0..k0+15, B stored [n][k]. */
__device__ __forceinline__ void dtc_frag_b(unsigned (&b)[4], const bf16* base, int ld, int n0, int k0, int lane) {
    const int q = lane >> 3, r = lane & 7;
    ldmatrix_x4(b, base + (n0 + r + (q >> 1) * 8) * ld + k0 + (q & 1) * 8);
}
/* The same with B stored [k][n]. */
__device__ __forceinline__ void dtc_frag_bt(unsigned (&b)[4], const bf16* base, int ld, int n0, int k0, int lane) {
    const int q = lane >> 3, r = lane & 7;
    ldmatrix_x4_trans(b, base + (k0 + r + (q & 1) * 8) * ld + n0 + (q >> 1) * 8);
}
__device__ __forceinline__ void dtc_st2(bf16* p, float x, float y) {
    *reinterpret_cast<__nv_bfloat162*>(p) = __floats2bfloat162_rn(x, y);
}
/* Waits for this thread's cp.async copies. */
__device__ __forceinline__ void dtc_cp_wait() {
    cp_async_commit();
    cp_async_wait<0>();
}
/* Rows [0, R) x columns [0, W) of a row-major global matrix (row stride `stride` elements) into
 * shared rows of `ld` elements; rows >= n are zero. `vec`: 16-byte aligned rows, copied with
 * cp.async (wait with dtc_cp_wait); otherwise element by element. */
template <typename E, int R, int W, int NT>
__device__ __forceinline__ void dtc_stage(E* dst, int ld, const E* src, long stride, int n, bool vec, int tid) {
    constexpr int V = 16 / sizeof(E);
    if (vec) {
        for (int e = tid; e < R * (W / V); e += NT) {
            const int t = e / (W / V), c = (e % (W / V)) * V;
            cp_async16(dst + t * ld + c, src + (t < n ? t : 0) * stride + c, t < n);
        }
    } else {
        for (int e = tid; e < R * W; e += NT) {
            const int t = e / W, c = e % W;
            dst[t * ld + c] = t < n ? src[t * stride + c] : E(0.0f);
        }
    }
}
/* The 16x16 diagonal blocks of (I + L)^-1 (C = 64, L strictly lower triangular, f32 rows of FP)
 * into Af, their upper triangles written zero: thread tid < C takes column tid % 16 of block
 * tid / 16, by forward substitution. No barrier. */
template <int C, int FP>
__device__ __forceinline__ void dtc_ut_diagonal(const float* Lf, float* Af, int tid) {
    static_assert(C == 64, "four 16x16 diagonal blocks");
    if (tid < C) {
        const int i = tid >> 4, cc = tid & 15;
        float x[16];
#pragma unroll
        for (int a = 0; a < 16; ++a) {
            float acc = a == cc ? 1.0f : 0.0f;
#pragma unroll
            for (int s = 0; s < a; ++s) acc = fmaf(-Lf[(16 * i + a) * FP + 16 * i + s], x[s], acc);
            x[a] = a < cc ? 0.0f : acc;
            Af[(16 * i + a) * FP + 16 * i + cc] = x[a];
        }
    }
}
/* acc[0..3] += sum over x < k of lhs_row[x] rhs[x][0..3] (rhs rows of FP floats, k a multiple
 * of 4), in x order, with float4 operands */
template <int FP>
__device__ __forceinline__ void dtc_mac4(float4& acc, const float* lhs_row, const float* rhs, int k) {
#pragma unroll 1
    for (int x = 0; x < k; x += 4) {
        const float4 l = *reinterpret_cast<const float4*>(lhs_row + x);
        const float lv[4] = {l.x, l.y, l.z, l.w};
#pragma unroll
        for (int y = 0; y < 4; ++y) {
            const float4 r = *reinterpret_cast<const float4*>(rhs + (x + y) * FP);
            acc.x = fmaf(lv[y], r.x, acc.x);
            acc.y = fmaf(lv[y], r.y, acc.y);
            acc.z = fmaf(lv[y], r.z, acc.z);
            acc.w = fmaf(lv[y], r.w, acc.w);
        }
    }
}
/* (I + L)^-1 of the C x C (C = 64) strictly lower triangular L (f32, rows of FP) into Af's lower
 * triangle (the diagonal blocks' upper triangles are written zero): the 16x16 diagonal blocks by
 * forward substitution (a thread a column), then the blocks below by distance,
 * Ai_ij = -Ai_ii sum_(j <= m < i) L_im Ai_mj (Tf: scratch). VEC4: a thread four columns of a row
 * with float4 operands (five shared loads for sixteen FMAs instead of thirty-two; FP % 4 == 0, and
 * a warp's L rows fall in distinct banks when FP % 32 == 4), for kernels with registers to spare;
 * otherwise a thread one element (FP = C + 1 avoids bank conflicts). Sums run in the same order
 * either way. L must be visible to the block; ends with a barrier. */
template <int C, int FP, int NT, bool VEC4>
__device__ __forceinline__ void dtc_ut_inverse(const float* Lf, float* Af, float* Tf, int tid) {
    static_assert(C == 64, "four 16x16 diagonal blocks");
    static_assert(!VEC4 || FP % 4 == 0, "float4 rows");
    dtc_ut_diagonal<C, FP>(Lf, Af, tid);
    __syncthreads();
#pragma unroll 1
    for (int dist = 1; dist < 4; ++dist) {
        if (VEC4) {
            /* item e: block (i, jb) = (dist + e / 64, i - dist), row a, columns c0 .. c0 + 3 */
            for (int e = tid; e < (4 - dist) * 64; e += NT) {
                const int i = dist + (e >> 6), jb = i - dist, a = (e >> 2) & 15, c0 = (e & 3) * 4;
                float4 acc = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
                for (int m = jb; m < i; ++m)
                    dtc_mac4<FP>(acc, Lf + (16 * i + a) * FP + 16 * m, Af + 16 * m * FP + 16 * jb + c0, 16);
                *reinterpret_cast<float4*>(Tf + (16 * i + a) * FP + 16 * jb + c0) = acc;
            }
            __syncthreads();
            /* the whole row of Ai_ii: its upper triangle is zero */
            for (int e = tid; e < (4 - dist) * 64; e += NT) {
                const int i = dist + (e >> 6), jb = i - dist, a = (e >> 2) & 15, c0 = (e & 3) * 4;
                float4 acc = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
                dtc_mac4<FP>(acc, Af + (16 * i + a) * FP + 16 * i, Tf + 16 * i * FP + 16 * jb + c0, 16);
                *reinterpret_cast<float4*>(Af + (16 * i + a) * FP + 16 * jb + c0) =
                    make_float4(-acc.x, -acc.y, -acc.z, -acc.w);
            }
        } else {
            for (int e = tid; e < (4 - dist) * 256; e += NT) {
                const int i = dist + (e >> 8), jb = i - dist, a = (e >> 4) & 15, cc = e & 15;
                float acc = 0.0f;
                for (int m = jb; m < i; ++m)
#pragma unroll
                    for (int x = 0; x < 16; ++x)
                        acc = fmaf(Lf[(16 * i + a) * FP + 16 * m + x], Af[(16 * m + x) * FP + 16 * jb + cc], acc);
                Tf[(16 * i + a) * FP + 16 * jb + cc] = acc;
            }
            __syncthreads();
            for (int e = tid; e < (4 - dist) * 256; e += NT) {
                const int i = dist + (e >> 8), jb = i - dist, a = (e >> 4) & 15, cc = e & 15;
                float acc = 0.0f;
                for (int x = 0; x <= a; ++x)
                    acc = fmaf(Af[(16 * i + a) * FP + 16 * i + x], Tf[(16 * i + x) * FP + 16 * jb + cc], acc);
                Af[(16 * i + a) * FP + 16 * jb + cc] = -acc;
            }
        }
        __syncthreads();
    }
}
#endif
