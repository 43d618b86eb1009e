//! The resolved model: one concrete block per layer, every default filled in.
//!
//! This is the only thing later stages (surgery planning, lowering, the typed-code macros) see of a
//! spec. The parser (`spec::parse`) produces it from YAML or `config.json`; `spec::layout` derives
//! the checkpoint tensor layout from it.

use serde::{Deserialize, Serialize};

/// A whole Apriel2 text model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSpec {
    /// `apriel2_text` (text) or `apriel2`.
    pub model_type: String,
    pub hidden_size: usize,
    pub vocab_size: usize,
    /// `embeddings.max_position_embeddings` (default 2048).
    pub max_position_embeddings: usize,
    pub tie_word_embeddings: bool,
    pub bos_token_id: Option<i64>,
    pub eos_token_id: Option<i64>,
    pub pad_token_id: Option<i64>,
    /// The final norm (`head.normalization`).
    pub head_norm: NormSpec,
    /// How the decoder was written (kept so the config can be written back the same way).
    pub decoder_form: DecoderForm,
    /// One entry per decoder layer, in order; `layers.len() == num_blocks`.
    pub layers: Vec<BlockSpec>,
}

/// `decoder.type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DecoderForm {
    Fixed,
    /// The pattern of block names; layer `i` uses `pattern[i % pattern.len()]`.
    Pattern(Vec<String>),
}

/// One decoder block: pre-norm residual `u = h + mixer(norm1(h)); h' = u + mlp(norm2(u))`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockSpec {
    /// The block's name in the config (`"block"` for a fixed decoder, else the pattern entry).
    pub name: String,
    pub mixer: MixerSpec,
    pub mlp: MlpSpec,
    pub normalization: NormSpec,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MixerSpec {
    Attention(AttentionSpec),
    Mamba(MambaSpec),
    Gdn(GdnSpec),
    Kda(KdaSpec),
    Stochastic(StochasticSpec),
}

impl MixerSpec {
    /// The `type` string of the config (`attention`, `mamba`, `gdn`, `kda`, `stochastic`).
    pub fn kind(&self) -> MixerKind {
        match self {
            MixerSpec::Attention(a) if a.window_size.is_some() => MixerKind::SlidingWindow,
            MixerSpec::Attention(_) => MixerKind::Attention,
            MixerSpec::Mamba(_) => MixerKind::Mamba,
            MixerSpec::Gdn(_) => MixerKind::Gdn,
            MixerSpec::Kda(_) => MixerKind::Kda,
            MixerSpec::Stochastic(_) => MixerKind::Stochastic,
        }
    }
}

/// Mixer kinds as users name them (`--mixer kda`), with sliding-window attention told apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum MixerKind {
    Attention,
    SlidingWindow,
    Mamba,
    Gdn,
    Kda,
    Stochastic,
}

impl MixerKind {
    pub fn name(self) -> &'static str {
        match self {
            MixerKind::Attention => "attention",
            MixerKind::SlidingWindow => "sliding_window",
            MixerKind::Mamba => "mamba",
            MixerKind::Gdn => "gdn",
            MixerKind::Kda => "kda",
            MixerKind::Stochastic => "stochastic",
        }
    }
}

impl std::fmt::Display for MixerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// `type: attention` (full or sliding window).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttentionSpec {
    /// Query heads `H`.
    pub heads: usize,
    /// KV heads `G` (`H % G == 0`).
    pub head_groups: usize,
    /// Per-head dim `Dh` (even, for rotate-half RoPE).
    pub head_size: usize,
    pub causal: bool,
    /// Sliding window `W` in tokens, including the query's own position.
    pub window_size: Option<usize>,
    pub bias: AttentionBiases,
    pub rotary: RotarySpec,
}

/// Which of q/k/v/o carry a bias (`add_linear_biases` with per-projection overrides resolved).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttentionBiases {
    pub q: bool,
    pub k: bool,
    pub v: bool,
    pub o: bool,
}

/// `rotary: {type: mistral_1d, theta}`; the only rotary type text models support.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RotarySpec {
    pub theta: f64,
}

impl RotarySpec {
    /// Bases at or below this are refused: frequencies are θ^(-2i/d), so θ = 1 makes them all
    /// 1 rad/token and θ < 1 makes them grow with i (models use 1e4 to 1e7).
    pub const MIN_THETA: f64 = 1.0;

    /// Why `theta` is not a sane RoPE base, if it is not.
    pub fn theta_problem(theta: f64) -> Option<String> {
        (!(theta > Self::MIN_THETA && theta.is_finite())).then(|| {
            format!(
                "must be > {} (the RoPE base θ, typically 1e4 to 1e6), found {theta:?}",
                Self::MIN_THETA
            )
        })
    }
}

/// `type: mamba` (the M1 grouped variant of Mamba-1, reference §2.6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MambaSpec {
    /// `N` (config key `state_size`, or `d_state` as surgery configs write it).
    pub state_size: usize,
    pub d_inner: usize,
    pub d_xb: usize,
    pub d_conv: usize,
    pub dt_rank: usize,
    pub repeat_kv_before_conv: bool,
    pub conv_bias: bool,
    pub dt_proj_bias: bool,
    /// Bias on `in_proj`, `dt_in_proj`, `out_proj`.
    pub add_linear_biases: bool,
    // Init-only parameters, kept for surgery's random init.
    pub dt_min: f64,
    pub dt_max: f64,
    pub dt_init_floor: f64,
    pub dt_scale: f64,
}

impl MambaSpec {
    /// Channels of the conv: `d_inner` when x is repeated before the conv, else `d_xb`.
    pub fn conv_channels(&self) -> usize {
        if self.repeat_kv_before_conv {
            self.d_inner
        } else {
            self.d_xb
        }
    }
}

/// `type: gdn` (Gated DeltaNet, reference §2.4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GdnSpec {
    pub value_heads: usize,
    pub key_heads: usize,
    pub key_head_dim: usize,
    pub value_head_dim: usize,
    pub conv_kernel_size: usize,
    pub conv_activation: Activation,
    pub norm_eps: f64,
}

impl GdnSpec {
    /// Channels of the q|k|v conv: `2·Hk·Dk + Hv·Dv`.
    pub fn conv_dim(&self) -> usize {
        2 * self.key_heads * self.key_head_dim + self.value_heads * self.value_head_dim
    }
}

/// `type: kda` (Kimi Delta Attention, reference §2.5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KdaSpec {
    pub heads: usize,
    pub head_dim: usize,
    pub conv_kernel_size: usize,
    pub norm_eps: f64,
    pub norm_activation: GateActivation,
}

/// `type: stochastic`: a supernet layer holding several sub-mixers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StochasticSpec {
    /// Sub-mixers in config order; never stochastic themselves.
    pub mixers: Vec<(String, MixerSpec)>,
    pub main_mixer_name: String,
    pub sampling: SamplingStrategy,
}

impl StochasticSpec {
    pub fn get(&self, name: &str) -> Option<&MixerSpec> {
        self.mixers.iter().find(|(n, _)| n == name).map(|(_, m)| m)
    }
    pub fn main(&self) -> &MixerSpec {
        // The parser guarantees main_mixer_name is among the mixers.
        self.get(&self.main_mixer_name).unwrap_or(&self.mixers[0].1)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SamplingStrategy {
    Uniform,
    /// Normalised weights per sub-mixer name (missing names weigh 1.0 before normalising).
    Weighted(Vec<(String, f64)>),
}

/// `mlp`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MlpSpec {
    pub intermediate_size: usize,
    pub activation: Activation,
    /// Gated: `down(act(gate(x)) * up(x))`, never with biases. Plain: `down(act(up(x)))`.
    pub gated: bool,
    /// Bias on `up_proj` (plain MLP only).
    pub up_bias: bool,
    /// Bias on `down_proj` (plain MLP only).
    pub down_bias: bool,
}

/// `normalization`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum NormSpec {
    RmsNorm {
        eps: f64,
    },
    /// `nn.LayerNorm` with weight and bias.
    LayerNorm {
        eps: f64,
    },
}

impl NormSpec {
    /// Epsilons are accepted in `(0, MAX_EPSILON)`: one is added to a mean square of order 1,
    /// so an epsilon near 1 or above swamps it (models use 1e-6 to 1e-5).
    pub const MAX_EPSILON: f64 = 1.0;

    /// Why `eps` is not a sane norm epsilon (`what` names it), if it is not.
    pub fn epsilon_problem(eps: f64, what: &str) -> Option<String> {
        (!(eps > 0.0 && eps < Self::MAX_EPSILON)).then(|| {
            format!(
                "must be in (0, {}) ({what}, typically 1e-5 or 1e-6), found {eps:?}",
                Self::MAX_EPSILON
            )
        })
    }

    pub fn eps(&self) -> f64 {
        match *self {
            NormSpec::RmsNorm { eps } | NormSpec::LayerNorm { eps } => eps,
        }
    }
}

/// Activation functions by their HF `ACT2FN` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Activation {
    /// `silu` / `swish`.
    Silu,
    /// `gelu` (exact, erf).
    Gelu,
    /// `gelu_pytorch_tanh`, `gelu_new`, `gelu_fast` (tanh approximation).
    GeluTanh,
    Relu,
    Sigmoid,
    /// `identity` / `linear`.
    Identity,
}

/// Activation of the gated RMSNorm (`normalization.activation` of KDA).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum GateActivation {
    Silu,
    Sigmoid,
}
