//! A dense row-major f64 array: the value type of the reference interpreter.

/// Row-major f64 data with a shape. Integer tensors (token ids, positions) are stored exactly
/// as f64 (ids < 2^53).
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    pub shape: Vec<usize>,
    pub data: Vec<f64>,
}

impl Array {
    pub fn new(shape: Vec<usize>, data: Vec<f64>) -> Self {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len(), "shape {shape:?}");
        Array { shape, data }
    }

    pub fn zeros(shape: Vec<usize>) -> Self {
        let n = shape.iter().product();
        Array {
            shape,
            data: vec![0.0; n],
        }
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Size of the last dimension (1 for a scalar).
    pub fn last_dim(&self) -> usize {
        self.shape.last().copied().unwrap_or(1)
    }

    /// Rounds every element to the nearest f32 (emulates f32 storage between ops).
    pub fn round_to_f32(&mut self) {
        for x in &mut self.data {
            *x = *x as f32 as f64;
        }
    }
}
