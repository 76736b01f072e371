import Testing
@testable import Tensor

/// `KVCache.append`: what it stores, and that decoding a token at a time does not copy the whole cache per token.
@Suite("KV cache")
struct KVCacheTests {
    /// `rows` rows of `[q | k | v]`, `width` floats each, values numbering their position.
    static func qkvRows(_ rows: Int, width: Int, from start: Int) -> [Float] {
        (0..<rows).flatMap { r in (0..<(3 * width)).map { Float((start + r) * 1000 + $0) } }
    }

    @Test("appending a prompt then one row at a time stores the keys, values and mask of appending them all at once")
    func appendsInOrder() {
        let width = 5, prompt = 3, tokens = 4
        var stepwise = KVCache(width: width)
        stepwise.append(rows: prompt, from: Self.qkvRows(prompt, width: width, from: 0), rowStride: 3 * width,
                        keyOffset: width, valueOffset: 2 * width, mask: [true, false, true])
        for t in 0..<tokens {
            stepwise.append(rows: 1, from: Self.qkvRows(1, width: width, from: prompt + t), rowStride: 3 * width,
                            keyOffset: width, valueOffset: 2 * width)
        }
        var whole = KVCache(width: width)
        whole.append(rows: prompt + tokens, from: Self.qkvRows(prompt + tokens, width: width, from: 0),
                     rowStride: 3 * width, keyOffset: width, valueOffset: 2 * width,
                     mask: [true, false, true] + [Bool](repeating: true, count: tokens))
        #expect(stepwise.keys == whole.keys)
        #expect(stepwise.values == whole.values)
        #expect(stepwise.keyMask == whole.keyMask)
        #expect(stepwise.count == prompt + tokens)
        #expect(stepwise.keys[width] == Float(1000 + width))  // row 1's key starts after its query
    }

    @Test("decoding 512 tokens one at a time moves the cache's storage a logarithmic number of times, not once per token")
    func growsGeometrically() {
        let width = 64
        var cache = KVCache(width: width)
        let row = Self.qkvRows(1, width: width, from: 0)
        var moves = 0, last: UnsafeRawPointer?
        for _ in 0..<512 {
            cache.append(rows: 1, from: row, rowStride: 3 * width, keyOffset: width, valueOffset: 2 * width)
            let base = cache.keys.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress!) }
            if base != last { moves += 1; last = base }
        }
        // Doubling from one row to 512 rows is about 10 moves; exact-size reservations made it 512.
        #expect(moves <= 24, "the keys' storage moved \(moves) times in 512 appends")
    }
}
