// Types generated from a spec say what the spec says: no layer kind it lacks, and a converter
// only between the models of its own source and target specs.
modelc_macros::model! {
    pub mod attention {
        spec: yaml("
hidden_size: 64
vocab_size: 32
decoder:
  num_blocks: 1
  block:
    mixer: {type: attention, heads: 4, head_groups: 2, head_size: 16, rotary: {type: mistral_1d, theta: 10000.0}}
    mlp: {intermediate_size: 128}
"),
    }
}

modelc_macros::model! {
    pub mod kda {
        spec: yaml("
hidden_size: 64
vocab_size: 32
decoder:
  num_blocks: 1
  block:
    mixer: {type: attention, heads: 4, head_groups: 2, head_size: 16, rotary: {type: mistral_1d, theta: 10000.0}}
    mlp: {intermediate_size: 128}
"),
        surgeries: [yaml("decoder: {block: {mixer: {type: kda, convolution_layer: {kernel_size: 4}}}}")],
    }
}

// Source and target swapped.
modelc_macros::converter! {
    pub fn to_kda(kda::Model) -> attention::Model {
        source: yaml("
hidden_size: 64
vocab_size: 32
decoder:
  num_blocks: 1
  block:
    mixer: {type: attention, heads: 4, head_groups: 2, head_size: 16, rotary: {type: mistral_1d, theta: 10000.0}}
    mlp: {intermediate_size: 128}
"),
        surgeries: [yaml("decoder: {block: {mixer: {type: kda, convolution_layer: {kernel_size: 4}}}}")],
    }
}

fn kinds(m: &attention::Model) -> usize {
    m.layers
        .iter()
        .filter(|l| matches!(l, attention::Layer::Mamba(_)))
        .count()
}

fn main() {
    let _ = kinds;
}
