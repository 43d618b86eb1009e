// A surgery that does not apply is an error at that surgery, with its line and column.
modelc_macros::model! {
    pub mod converted {
        spec: yaml("
hidden_size: 64
decoder:
  num_blocks: 2
  block:
    mixer: {type: attention, heads: 4, head_groups: 2, head_size: 16, rotary: {type: mistral_1d, theta: 10000.0}}
    mlp: {intermediate_size: 128}
"),
        surgeries: [yaml("
decoder:
  block:
    mixer: {type: kda, init: maybe}
")],
    }
}

fn main() {}
