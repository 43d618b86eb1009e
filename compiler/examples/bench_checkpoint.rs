//! Writes a Llama-style bf16 checkpoint of about `GB` gigabytes for the conversion benchmark
//! (`scripts/bench_convert.sh`): hidden 2048, 16 heads of 128 with 4 KV heads, MLP 5632, vocab
//! 32000, as many layers as fit (≈ 90 MB each), in 1 GB shards. Values are a cheap xorshift
//! stream (incompressible, not meaningful); the writer streams, so memory stays at one tensor.
//!
//! cargo run -p modelc --example bench_checkpoint -- OUT_DIR [GB]

use std::path::PathBuf;

use modelc_runtime::tensor::DType;
use modelc_runtime::weights::{ShardedWriter, TensorSpec};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(args.next().ok_or("usage: bench_checkpoint OUT_DIR [GB]")?);
    let gb: f64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(2.0);
    let (d, inter, heads, kv, dh, vocab) = (2048usize, 5632usize, 16usize, 4usize, 128usize, 32000usize);
    let per_layer = 2 * (2 * d + heads * dh * d * 2 + kv * dh * d * 2 + 3 * inter * d);
    let fixed = 2 * (2 * vocab * d + d);
    let layers = (((gb * 1e9) as usize).saturating_sub(fixed) / per_layer).max(1);
    let mut specs = vec![TensorSpec::new(
        "model.embed_tokens.weight",
        DType::BF16,
        vec![vocab, d],
    )];
    for l in 0..layers {
        let p = format!("model.layers.{l}");
        for (name, shape) in [
            ("input_layernorm.weight", vec![d]),
            ("self_attn.q_proj.weight", vec![heads * dh, d]),
            ("self_attn.k_proj.weight", vec![kv * dh, d]),
            ("self_attn.v_proj.weight", vec![kv * dh, d]),
            ("self_attn.o_proj.weight", vec![d, heads * dh]),
            ("post_attention_layernorm.weight", vec![d]),
            ("mlp.gate_proj.weight", vec![inter, d]),
            ("mlp.up_proj.weight", vec![inter, d]),
            ("mlp.down_proj.weight", vec![d, inter]),
        ] {
            specs.push(TensorSpec::new(format!("{p}.{name}"), DType::BF16, shape));
        }
    }
    specs.push(TensorSpec::new("model.norm.weight", DType::BF16, vec![d]));
    specs.push(TensorSpec::new("lm_head.weight", DType::BF16, vec![vocab, d]));
    let config = serde_json::json!({
        "model_type": "llama",
        "architectures": ["LlamaForCausalLM"],
        "hidden_size": d,
        "intermediate_size": inter,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv,
        "head_dim": dh,
        "vocab_size": vocab,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "max_position_embeddings": 2048,
        "tie_word_embeddings": false,
        "torch_dtype": "bfloat16"
    });
    std::fs::create_dir_all(&out)?;
    std::fs::write(out.join("config.json"), serde_json::to_string_pretty(&config)?)?;
    let mut writer = ShardedWriter::new(&out, 1_000_000_000, specs.clone())?;
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut total = 0usize;
    for s in &specs {
        let n: usize = s.shape.iter().product::<usize>() * 2;
        let mut data = vec![0u8; n];
        for chunk in data.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // Keep exponents tame: small bf16 values, not NaN/inf.
            let v = state & 0x3f7f_3f7f_3f7f_3f7f;
            chunk.copy_from_slice(&v.to_le_bytes()[..chunk.len()]);
        }
        writer.write(&s.key, &data)?;
        total += n;
    }
    writer.finish()?;
    println!(
        "{}: {layers} layers, {} tensors, {:.3} GB",
        out.display(),
        specs.len(),
        total as f64 / 1e9
    );
    Ok(())
}
