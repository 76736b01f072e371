/// The world's own pseudo-random generator: SplitMix64 (Steele, Lea & Flood 2014).
///
/// StoryWorld never uses Swift's `SystemRandomNumberGenerator` or `Hasher`, whose output changes
/// between runs and platforms; every draw comes from this generator, seeded from `(seed, stream, index)`,
/// so entry `i` is the same whatever else is generated.
public struct WorldRandom: Sendable {
    private var state: UInt64

    /// A generator for item `index` of `stream` under the world `seed`.
    public init(seed: UInt64, stream: UInt64, index: UInt64) {
        // Mix the three inputs through the finaliser so nearby seeds/indices give unrelated streams.
        var s = WorldRandom.mix(seed &+ 0x9E37_79B9_7F4A_7C15)
        s = WorldRandom.mix(s ^ (stream &* 0xD1B5_4A32_D192_ED03))
        s = WorldRandom.mix(s ^ (index &* 0x8CB9_2BA7_2F3D_8DD7))
        state = s
    }

    /// The SplitMix64 output function (also a good 64-bit hash finaliser).
    static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return WorldRandom.mix(state)
    }

    /// A uniform integer in `0..<bound` (`bound` > 0), without modulo bias.
    public mutating func int(below bound: Int) -> Int {
        precondition(bound > 0, "bound must be positive")
        let b = UInt64(bound)
        let limit = UInt64.max - UInt64.max % b
        while true {
            let r = next()
            if r < limit { return Int(r % b) }
        }
    }

    /// A uniform double in [0, 1) from the top 53 bits.
    public mutating func unit() -> Double {
        Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// True with probability `p`.
    public mutating func chance(_ p: Double) -> Bool { unit() < p }

    /// A uniformly chosen element of a non-empty array.
    public mutating func pick<T>(_ items: [T]) -> T { items[int(below: items.count)] }

    /// The index chosen with probability proportional to `weights` (all ≥ 0, sum > 0).
    public mutating func weighted(_ weights: [Double]) -> Int {
        let total = weights.reduce(0, +)
        var r = unit() * total
        for (i, w) in weights.enumerated() {
            if r < w { return i }
            r -= w
        }
        return weights.count - 1
    }

    /// A Fisher–Yates shuffle of `items`.
    public mutating func shuffled<T>(_ items: [T]) -> [T] {
        var a = items
        var i = a.count - 1
        while i > 0 {
            let j = int(below: i + 1)
            a.swapAt(i, j)
            i -= 1
        }
        return a
    }
}
