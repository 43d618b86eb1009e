//! Config names of activations and norms (HF `ACT2FN` spellings), both ways.

use super::model::{Activation, GateActivation};

/// Every activation name accepted, in the order error messages list them.
pub const ACTIVATION_NAMES: &[&str] = &[
    "silu",
    "swish",
    "gelu",
    "gelu_pytorch_tanh",
    "gelu_new",
    "gelu_fast",
    "relu",
    "sigmoid",
    "identity",
    "linear",
];

impl Activation {
    /// The activation an HF `ACT2FN` name denotes (aliases included).
    pub fn from_hf_name(name: &str) -> Option<Activation> {
        Some(match name {
            "silu" | "swish" => Activation::Silu,
            "gelu" => Activation::Gelu,
            "gelu_pytorch_tanh" | "gelu_new" | "gelu_fast" => Activation::GeluTanh,
            "relu" => Activation::Relu,
            "sigmoid" => Activation::Sigmoid,
            "identity" | "linear" => Activation::Identity,
            _ => return None,
        })
    }

    /// The canonical name written back into configs.
    pub fn hf_name(self) -> &'static str {
        match self {
            Activation::Silu => "silu",
            Activation::Gelu => "gelu",
            Activation::GeluTanh => "gelu_pytorch_tanh",
            Activation::Relu => "relu",
            Activation::Sigmoid => "sigmoid",
            Activation::Identity => "identity",
        }
    }
}

impl GateActivation {
    pub fn from_name(name: &str) -> Option<GateActivation> {
        match name {
            "silu" => Some(GateActivation::Silu),
            "sigmoid" => Some(GateActivation::Sigmoid),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            GateActivation::Silu => "silu",
            GateActivation::Sigmoid => "sigmoid",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_round_trips_to_its_canonical_form() {
        for name in ACTIVATION_NAMES {
            let a = Activation::from_hf_name(name).unwrap_or_else(|| panic!("{name}"));
            assert_eq!(Activation::from_hf_name(a.hf_name()), Some(a));
        }
        assert_eq!(Activation::from_hf_name("swish"), Some(Activation::Silu));
        assert_eq!(Activation::from_hf_name("gelu_new"), Some(Activation::GeluTanh));
        assert_eq!(Activation::from_hf_name("tanh"), None);
        assert_eq!(GateActivation::from_name("sigmoid"), Some(GateActivation::Sigmoid));
        assert_eq!(GateActivation::from_name("gelu"), None);
    }
}
