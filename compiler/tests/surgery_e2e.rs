//! End to end on the CPU reference: a random tiny Llama checkpoint converted to Apriel2 gives
//! the logits of a direct Llama forward on the source weights; converted with KIL, the result
//! loads and runs, its untouched tensors are bitwise the source's, and with the main
//! (attention) placement it still computes the source model.

mod surgery_util;

use std::collections::BTreeMap;
use std::path::Path;

use modelc::ir::lower::lower_model;
use modelc::passes::{placement::specialize, verify, Placement};
use modelc::reference::{Array, DeltaRuleForm, InterpOptions, Precision, Session, WeightStore};
use modelc::spec::{self, layout, ModelSpec};
use modelc::surgery::convert::{convert_checkpoint, ConvertOptions};
use modelc_runtime::tensor::{DType, HostTensor};
use modelc_runtime::weights::Checkpoint;
use surgery_util::*;

const PROMPT: [u32; 7] = [1, 5, 7, 3, 9, 2, 44];

/// Logits `[T, vocab]` of the converted checkpoint at `dir` on the reference interpreter (f64).
fn reference_logits(dir: &Path, placement: Option<&str>) -> (ModelSpec, Vec<f64>) {
    let spec = spec::load(dir).unwrap_or_else(|e| panic!("{e}"));
    let ckpt = Checkpoint::open(dir).unwrap();
    let layout: Vec<(String, Vec<usize>)> = layout::weights(&spec).into_iter().map(|w| (w.key, w.shape)).collect();
    let weights = WeightStore::from_checkpoint(&ckpt, &layout).unwrap_or_else(|e| panic!("{e}"));
    let p = match placement {
        None => Placement::main(&spec),
        Some(name) => Placement::all(&spec, name).unwrap(),
    };
    let graph = specialize(lower_model(&spec).unwrap(), &p).unwrap();
    verify(&graph).unwrap();
    let opts = InterpOptions {
        precision: Precision::F64,
        delta_rule: DeltaRuleForm::Recurrent,
    };
    let mut session = Session::new(&graph, &weights, 1, opts).unwrap();
    let logits: Array = session.forward(&[PROMPT.to_vec()]).unwrap();
    assert_eq!(logits.shape, vec![1, PROMPT.len(), 50]);
    (spec, logits.data)
}

// ---- A direct Llama forward (HF semantics), f64, on the source tensors. ----

struct W(BTreeMap<String, (Vec<usize>, Vec<f64>)>);

impl W {
    fn m(&self, k: &str) -> &(Vec<usize>, Vec<f64>) {
        self.0.get(k).unwrap_or_else(|| panic!("no {k}"))
    }
}

/// `x [T, in] · Wᵀ` with `W [out, in]`.
fn linear(x: &[Vec<f64>], w: &(Vec<usize>, Vec<f64>)) -> Vec<Vec<f64>> {
    let (out, inp) = (w.0[0], w.0[1]);
    x.iter()
        .map(|row| {
            (0..out)
                .map(|o| (0..inp).map(|i| row[i] * w.1[o * inp + i]).sum())
                .collect()
        })
        .collect()
}

fn rms(x: &[Vec<f64>], w: &[f64], eps: f64) -> Vec<Vec<f64>> {
    x.iter()
        .map(|r| {
            let s = (r.iter().map(|v| v * v).sum::<f64>() / r.len() as f64 + eps).sqrt();
            r.iter().zip(w).map(|(v, g)| v / s * g).collect()
        })
        .collect()
}

fn rope(x: &mut [f64], pos: usize, dh: usize, theta: f64) {
    let half = dh / 2;
    let orig = x.to_vec();
    for i in 0..dh {
        let f = theta.powf(-2.0 * (i % half) as f64 / dh as f64);
        let (s, c) = (pos as f64 * f).sin_cos();
        let rot = if i < half { -orig[i + half] } else { orig[i - half] };
        x[i] = orig[i] * c + rot * s;
    }
}

fn llama_forward(w: &W) -> Vec<f64> {
    let (d, heads, kv, dh, eps, theta) = (64, 4, 2, 16, 1e-5, 10000.0);
    let emb = w.m("model.embed_tokens.weight");
    let mut h: Vec<Vec<f64>> = PROMPT
        .iter()
        .map(|&t| emb.1[t as usize * d..(t as usize + 1) * d].to_vec())
        .collect();
    let t_len = h.len();
    for l in 0..4 {
        let p = format!("model.layers.{l}");
        let x = rms(&h, &w.m(&format!("{p}.input_layernorm.weight")).1, eps);
        let mut q = linear(&x, w.m(&format!("{p}.self_attn.q_proj.weight")));
        let mut k = linear(&x, w.m(&format!("{p}.self_attn.k_proj.weight")));
        let v = linear(&x, w.m(&format!("{p}.self_attn.v_proj.weight")));
        for t in 0..t_len {
            for hh in 0..heads {
                rope(&mut q[t][hh * dh..(hh + 1) * dh], t, dh, theta);
            }
            for g in 0..kv {
                rope(&mut k[t][g * dh..(g + 1) * dh], t, dh, theta);
            }
        }
        let mut att = vec![vec![0.0; heads * dh]; t_len];
        for hh in 0..heads {
            let g = hh / (heads / kv);
            for t in 0..t_len {
                let scores: Vec<f64> = (0..=t)
                    .map(|j| (0..dh).map(|i| q[t][hh * dh + i] * k[j][g * dh + i]).sum::<f64>() / (dh as f64).sqrt())
                    .collect();
                let m = scores.iter().cloned().fold(f64::MIN, f64::max);
                let e: Vec<f64> = scores.iter().map(|s| (s - m).exp()).collect();
                let z: f64 = e.iter().sum();
                for i in 0..dh {
                    att[t][hh * dh + i] = (0..=t).map(|j| e[j] / z * v[j][g * dh + i]).sum();
                }
            }
        }
        let o = linear(&att, w.m(&format!("{p}.self_attn.o_proj.weight")));
        for t in 0..t_len {
            for i in 0..d {
                h[t][i] += o[t][i];
            }
        }
        let x2 = rms(&h, &w.m(&format!("{p}.post_attention_layernorm.weight")).1, eps);
        let gate = linear(&x2, w.m(&format!("{p}.mlp.gate_proj.weight")));
        let up = linear(&x2, w.m(&format!("{p}.mlp.up_proj.weight")));
        let act: Vec<Vec<f64>> = gate
            .iter()
            .zip(&up)
            .map(|(g, u)| g.iter().zip(u).map(|(a, b)| a / (1.0 + (-a).exp()) * b).collect())
            .collect();
        let down = linear(&act, w.m(&format!("{p}.mlp.down_proj.weight")));
        for t in 0..t_len {
            for i in 0..d {
                h[t][i] += down[t][i];
            }
        }
    }
    let hn = rms(&h, &w.m("model.norm.weight").1, eps);
    linear(&hn, w.m("lm_head.weight")).into_iter().flatten().collect()
}

fn weights_of(tensors: &[(String, HostTensor)]) -> W {
    W(tensors
        .iter()
        .map(|(k, t)| (k.clone(), (t.shape.clone(), t.to_f64_vec())))
        .collect())
}

/// Largest absolute difference. Both sides compute in f64 from the same f32 weights and differ
/// only in summation order (~1e-15 relative on logits of size ≲ 10), so 1e-9 is far above
/// rounding noise and far below any real difference.
fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).fold(0.0, |m, (x, y)| m.max((x - y).abs()))
}

#[test]
fn converted_llama_matches_a_direct_forward() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("llama");
    let tensors = make_llama(&src, DType::F32);
    let direct = llama_forward(&weights_of(&tensors));
    let out = tmp.path().join("apriel");
    convert_checkpoint(&src, &out, &[], &ConvertOptions::default(), &mut |_| {}).unwrap();
    let (_, logits) = reference_logits(&out, None);
    let d = max_diff(&logits, &direct);
    assert!(d < 1e-9, "max |Δlogit| = {d}");
    assert!(direct.iter().any(|x| x.abs() > 0.1), "logits suspiciously small");
}

#[test]
fn kil_conversion_loads_runs_and_keeps_untouched_layers() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("llama");
    let tensors = make_llama(&src, DType::F32);
    let direct = llama_forward(&weights_of(&tensors));
    let out = tmp.path().join("kil");
    let kil = [(
        "hybrid_kil.yaml".to_string(),
        yaml(include_str!("../../specs/surgery/hybrid_kil.yaml")),
    )];
    convert_checkpoint(&src, &out, &kil, &ConvertOptions::default(), &mut |_| {}).unwrap();

    // Untouched tensors are bitwise the source's: layers 0 and 3 whole, the attention
    // sub-mixers, MLPs and norms of layers 1 and 2, embeddings, final norm, lm_head.
    let ck = Checkpoint::open(&out).unwrap();
    let mut compared = 0;
    for (k, t) in &tensors {
        let key = match k.strip_prefix("model.layers.") {
            Some(rest) => {
                let (layer, rest) = rest.split_once('.').unwrap();
                let hybrid = layer == "1" || layer == "2";
                let rest = match rest.strip_prefix("self_attn.") {
                    Some(r) if hybrid => format!("mixer.mixers.attention.{r}"),
                    Some(r) => format!("mixer.{r}"),
                    None => rest.to_string(),
                };
                format!("model.decoder.blocks.{layer}.{rest}")
            }
            None => k.clone(),
        };
        let got = ck.get(&key).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(got.data, &t.data[..], "{key} differs from {k}");
        compared += 1;
    }
    assert_eq!(compared, tensors.len());

    // The main placement runs the attention sub-mixers: the source model, exactly.
    let (spec, main) = reference_logits(&out, None);
    assert_eq!(spec.layers.len(), 4);
    let d = max_diff(&main, &direct);
    assert!(d < 1e-9, "main placement: max |Δlogit| = {d}");
    // The KDA placement runs and gives finite logits that differ from the attention model's.
    let (_, kda) = reference_logits(&out, Some("kda"));
    assert!(kda.iter().all(|x| x.is_finite()));
    assert!(max_diff(&kda, &direct) > 1e-3);
}
