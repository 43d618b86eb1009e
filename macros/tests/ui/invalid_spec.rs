// The spec's own error (line and column inside the YAML) at the macro call.
modelc_macros::model! {
    pub mod invalid {
        spec: yaml("
hidden_size: 64
decoder:
  num_blocks: 2
  block:
    mixer: {type: attention, heads: 4, head_groups: 3, head_size: 16, rotary: {type: mistral_1d, theta: 10000.0}}
    mlp: {intermediate_size: 128}
"),
    }
}

fn main() {}
