//! A small, seeded, deterministic PRNG for deployment selection: xoshiro256**
//! seeded through splitmix64, plus the draws the bandit needs (uniform,
//! standard normal, Gamma by Marsaglia–Tsang, Beta from two Gammas).
//!
//! Not cryptographic. Each gateway worker owns one [`Rng`] (inside a
//! [`super::strategy::SelectState`]); seeding it from a fixed value makes a
//! sequence of selections reproducible in tests.

/// xoshiro256** state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rng {
    s: [u64; 4],
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Upper bound on rejection-sampling rounds; the expected count is about 1.
const MAX_REJECTIONS: u32 = 1_000;

impl Rng {
    /// A generator whose whole sequence is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        let mut sm = seed;
        let s = [
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
        ];
        Rng { s }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in `[0, 1)` with 53 bits of precision.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `(0, 1)`: never exactly zero (safe for `ln`).
    fn open_unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
    }

    /// A standard normal draw (Marsaglia polar method).
    pub fn standard_normal(&mut self) -> f64 {
        for _ in 0..MAX_REJECTIONS {
            let u = 2.0 * self.next_f64() - 1.0;
            let v = 2.0 * self.next_f64() - 1.0;
            let s = u * u + v * v;
            if s > 0.0 && s < 1.0 {
                return u * (-2.0 * s.ln() / s).sqrt();
            }
        }
        0.0
    }

    /// A Gamma(`shape`, 1) draw (Marsaglia–Tsang; shapes below 1 boosted by
    /// `U^(1/shape)`). A non-positive or non-finite shape yields 0.
    pub fn gamma(&mut self, shape: f64) -> f64 {
        if !(shape.is_finite() && shape > 0.0) {
            return 0.0;
        }
        if shape < 1.0 {
            let boost = self.open_unit().powf(1.0 / shape);
            return self.gamma(shape + 1.0) * boost;
        }
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        for _ in 0..MAX_REJECTIONS {
            let x = self.standard_normal();
            let t = 1.0 + c * x;
            if t <= 0.0 {
                continue;
            }
            let v = t * t * t;
            let u = self.open_unit();
            if u < 1.0 - 0.0331 * x * x * x * x || u.ln() < 0.5 * x * x + d * (1.0 - v + v.ln()) {
                return d * v;
            }
        }
        d
    }

    /// A Beta(`a`, `b`) draw as `X / (X + Y)` with `X ~ Gamma(a)`,
    /// `Y ~ Gamma(b)`; 0.5 if both draws are zero (degenerate parameters).
    pub fn beta(&mut self, a: f64, b: f64) -> f64 {
        let x = self.gamma(a);
        let y = self.gamma(b);
        let sum = x + y;
        if sum > 0.0 && sum.is_finite() {
            x / sum
        } else {
            0.5
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence() {
        let mut a = Rng::new(42);
        let mut b = Rng::new(42);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        assert_ne!(Rng::new(1).next_u64(), Rng::new(2).next_u64());
    }

    #[test]
    fn uniform_in_range_and_centred() {
        let mut r = Rng::new(7);
        let n = 20_000;
        let mut sum = 0.0;
        for _ in 0..n {
            let x = r.next_f64();
            assert!((0.0..1.0).contains(&x));
            sum += x;
        }
        assert!((sum / n as f64 - 0.5).abs() < 0.01);
    }

    #[test]
    fn gamma_and_beta_means() {
        let mut r = Rng::new(9);
        let n = 20_000;
        for shape in [0.5, 1.0, 3.0, 20.0] {
            let mean = (0..n).map(|_| r.gamma(shape)).sum::<f64>() / n as f64;
            assert!(
                (mean - shape).abs() < 0.05 * shape + 0.02,
                "{shape}: {mean}"
            );
        }
        let (a, b) = (8.0, 2.0);
        let mean = (0..n)
            .map(|_| {
                let x = r.beta(a, b);
                assert!((0.0..=1.0).contains(&x));
                x
            })
            .sum::<f64>()
            / n as f64;
        assert!((mean - 0.8).abs() < 0.01, "{mean}");
        assert_eq!(r.gamma(0.0), 0.0);
        assert_eq!(r.gamma(f64::NAN), 0.0);
        assert_eq!(r.beta(0.0, 0.0), 0.5);
    }
}
