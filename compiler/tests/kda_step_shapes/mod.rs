//! The KDA decode step's test shapes, shared by the tests that compile its kernels
//! (`nvrtc_compile`) and run them (`gpu_kernels`).

use modelc::codegen::templates::kda_decode_step::{kda_decode_step_cluster_size, KdaDecodeStepParams};
use modelc::spec::GateActivation;

/// The KDA decode step's shapes: hybrid-1b's, a tiny one, and an uneven one (Dk 32, Dv 72, a conv
/// bias, no conv SiLU, ranks 16 and 64, a sigmoid gate), with the cluster sizes to try.
pub fn kda_step_cases() -> Vec<(KdaDecodeStepParams, Vec<usize>)> {
    let big = KdaDecodeStepParams {
        heads: 16,
        key_dim: 128,
        value_dim: 128,
        conv_kernel: 4,
        conv_bias: false,
        conv_silu: true,
        conv_channels: 6144,
        q_channel: 0,
        k_channel: 2048,
        v_channel: 4096,
        decay_rank: 128,
        gate_rank: 128,
        qk_l2norm: true,
        scale: 128f32.powf(-0.5),
        norm_eps: 1e-5,
        norm_act: GateActivation::Silu,
    };
    let tiny = KdaDecodeStepParams {
        heads: 4,
        key_dim: 8,
        value_dim: 8,
        conv_channels: 96,
        k_channel: 32,
        v_channel: 64,
        decay_rank: 8,
        gate_rank: 8,
        ..big
    };
    let uneven = KdaDecodeStepParams {
        heads: 3,
        key_dim: 32,
        value_dim: 72,
        conv_bias: true,
        conv_silu: false,
        conv_channels: 416,
        q_channel: 8,
        k_channel: 104,
        v_channel: 200,
        decay_rank: 16,
        gate_rank: 64,
        qk_l2norm: false,
        norm_act: GateActivation::Sigmoid,
        ..big
    };
    assert_eq!(kda_decode_step_cluster_size(&big), Some(8));
    assert_eq!(kda_decode_step_cluster_size(&tiny), None);
    assert_eq!(kda_decode_step_cluster_size(&uneven), Some(4));
    vec![(big, vec![8, 4, 2]), (tiny, vec![1, 2]), (uneven, vec![4, 8])]
}
