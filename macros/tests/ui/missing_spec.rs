modelc_macros::model! {
    pub mod missing { spec: "no/such/spec.yaml" }
}

fn main() {}
