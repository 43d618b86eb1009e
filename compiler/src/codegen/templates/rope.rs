//! Rotate-half RoPE as CUDA text, shared by the glue kernels that apply it and the attention
//! decode that folds it in, so that both rotate alike, bit for bit.

/// sin and cos for RoPE (the inverse frequencies live in global memory, not `__constant__`:
/// each lane of a warp reads a different one, which the constant cache would serialise). The
/// angle (position × inverse frequency, up to ~3e4 rad) is formed and reduced to [-π, π] in f64,
/// then `sincosf` in f32: about 1e-7 absolute error, far below the bf16 rounding of the outputs,
/// at a fraction of the cost of an f64 `sincos` per element.
pub const ROPE_SINCOS: &str = "static __device__ __forceinline__ void rope_sincos(double a, float* s, float* c) {
    a -= 6.283185307179586 * rint(a * 0.15915494309189535);
    sincosf((float)a, s, c);
}
";

/// The inverse frequencies of a `head_dim`-wide head, `theta^(-2i / head_dim)` for
/// `i < head_dim / 2`, as the declaration of the f64 table `name` (one line, no newline).
pub fn rope_inv_freq_table(name: &str, head_dim: usize, theta: f64) -> String {
    let half = head_dim / 2;
    let freqs: Vec<String> = (0..half)
        .map(|i| f64_lit(theta.powf(-2.0 * i as f64 / head_dim as f64)))
        .collect();
    format!("__device__ const double {name}[{half}] = {{{}}};", freqs.join(", "))
}

/// Channel `c` of a rotated head in f32, as an expression: `x(c)` reads channel `c` of the
/// rows (f32; its errors pass through), `freqs` names the table and `pos` the f64 position.
pub fn rope_rotated<E>(
    x: impl Fn(&str) -> Result<String, E>,
    freqs: &str,
    pos: &str,
    head_dim: usize,
) -> Result<String, E> {
    let half = head_dim / 2;
    Ok(format!(
        "[&]() {{ const int i = c % {head_dim}; const int j = i % {half}; float s, co; \
         rope_sincos({pos} * {freqs}[j], &s, &co); \
         return i < {half} ? {} * co - {} * s : {} * co + {} * s; }}()",
        x("c")?,
        x(&format!("c + {half}"))?,
        x("c")?,
        x(&format!("c - {half}"))?
    ))
}

/// f64 literal that parses back to the same value.
fn f64_lit(x: f64) -> String {
    if x.is_finite() {
        format!("{x:e}")
    } else {
        "0.0".into()
    }
}
