mod surgery_util;
use surgery_util::*;
use modelc::surgery::*;
use modelc_runtime::tensor::DType;

#[test]
fn smoke() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    make_llama(&src, DType::F32);
    let s = surgeries(&["decoder:\n  type: pattern\n  pattern: [attn, hyb]\n  blocks:\n    attn: {mixer: {type: attention}}\n    hyb:\n      mixer:\n        type: stochastic\n        main_mixer_name: attention\n        mixers:\n          attention: {type: attention}\n          kda: {type: kda, convolution_layer: {kernel_size: 4}}\n          gdn: {type: gdn, convolution_layer: {kernel_size: 4}}\n          mamba: {type: mamba, d_inner: 64, d_xb: 16, dt_rank: 4, d_state: 16, conv_bias: true, dt_proj_bias: true}\n"]);
    let out = dir.path().join("out");
    let r = convert_checkpoint(&src, &out, &s, &ConvertOptions::default(), &mut |_| {});
    match &r { Err(e) => panic!("{e}"), Ok(r) => { println!("{}", render_tree(&r.conversion.plan)); println!("{}", serde_json::to_string_pretty(&r.conversion.config).unwrap()); } }
}
