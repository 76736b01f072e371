import CHalfKernels

/// How a model loader keeps weight matrices that a checkpoint stores as F16 or BF16.
public enum WeightPrecision: String, Sendable, CaseIterable {
    /// Keep them in their stored 16-bit format (half the memory; products widen them per tile).
    /// F32 tensors stay F32. The default: a half-precision checkpoint then loads at its file size.
    case stored
    /// Widen everything to float32 on load (the behaviour before half-precision weights).
    case float32
}

/// A weight matrix (or convolution kernel) in float32, f16 or bf16 storage.
///
/// Products (`linear`, `conv2d`) read a half-precision weight as it is stored and widen a tile of
/// it at a time to float32, so the computation is the float32 product of the stored values
/// (widening is exact) and memory holds 2 bytes per weight. Small parameters (biases, norms)
/// stay `Tensor`s.
public struct Weight: Sendable {
    /// The stored element type (safetensors spelling).
    public enum DType: String, Sendable, CaseIterable {
        case f32 = "F32", f16 = "F16", bf16 = "BF16"
        /// Bytes per element.
        public var byteSize: Int { self == .f32 ? 4 : 2 }
    }

    enum Storage: Sendable {
        case float32([Float])
        /// Raw f16 or bf16 bit patterns, row-major.
        case half([UInt16])
    }

    /// Extent of each dimension, outermost (output rows) first.
    public let shape: [Int]
    public let dtype: DType
    let storage: Storage

    /// A float32 weight over a tensor's values (no copy).
    public init(_ tensor: Tensor) {
        shape = tensor.shape
        dtype = .f32
        storage = .float32(tensor.data)
    }

    /// A half-precision weight over raw f16/bf16 bit patterns; throws if the count disagrees with
    /// the shape or `dtype` is not a 16-bit type.
    public init(shape: [Int], bits: [UInt16], dtype: DType) throws {
        guard dtype != .f32 else { throw TensorError("Weight(bits:): dtype must be F16 or BF16, got F32") }
        let n = try Tensor.elementCount(shape)
        guard n == bits.count else {
            throw TensorError("\(dtype.rawValue) weight of shape \(shape) needs \(n) values, got \(bits.count)")
        }
        self.shape = shape
        self.dtype = dtype
        storage = .half(bits)
    }

    /// Half storage whose count matches its shape by construction (a conversion of this weight's own values).
    private init(uncheckedShape shape: [Int], bits: [UInt16], dtype: DType) {
        self.shape = shape
        self.dtype = dtype
        storage = .half(bits)
    }

    /// Number of elements.
    public var count: Int { shape.reduce(1, *) }
    public var rank: Int { shape.count }
    /// Rows of the `[rows, rowLength]` view (output features / channels).
    public var rows: Int { shape.first ?? 1 }
    /// Elements per row (input features, or C·kh·kw for a convolution kernel).
    public var rowLength: Int { rows == 0 ? 0 : count / rows }
    /// Bytes the values take in memory.
    public var byteCount: Int { count * dtype.byteSize }

    /// The values as a float32 tensor (a copy for half precision; exact).
    public func float32() -> Tensor {
        switch storage {
        case let .float32(data): return Tensor(uncheckedShape: shape, data: data)
        case .half:
            var out = [Float](repeating: 0, count: count)
            out.withUnsafeMutableBufferPointer { o in
                if let base = o.baseAddress { widenRows(0..<rows, into: base) }
            }
            return Tensor(uncheckedShape: shape, data: out)
        }
    }

    /// The same values stored as `dtype` (narrowing from float32 rounds to nearest even).
    public func converted(to target: DType) -> Weight {
        if target == dtype { return self }
        let values = float32().data
        switch target {
        case .f32: return Weight(Tensor(uncheckedShape: shape, data: values))
        case .f16: return Weight(uncheckedShape: shape, bits: values.map(halfBitsFromFloat), dtype: .f16)
        case .bf16: return Weight(uncheckedShape: shape, bits: values.map(bfloat16BitsFromFloat), dtype: .bf16)
        }
    }

    /// The same values under another shape with the same element count.
    public func reshaped(_ newShape: [Int]) throws -> Weight {
        guard try Tensor.elementCount(newShape) == count else {
            throw TensorError("cannot reshape \(dtype.rawValue) weight \(shape) (\(count) values) to \(newShape)")
        }
        return Weight(shape: newShape, dtype: dtype, storage: storage)
    }

    private init(shape: [Int], dtype: DType, storage: Storage) {
        self.shape = shape
        self.dtype = dtype
        self.storage = storage
    }

    /// Rows `indices` widened to float32, as `[indices.count, rowLength]` (an embedding lookup).
    public func gatherRows(_ indices: [Int]) throws -> Tensor {
        let d = rowLength
        var out = [Float](repeating: 0, count: indices.count * d)
        for i in indices where i < 0 || i >= rows {
            throw TensorError("row index \(i) out of range 0..<\(rows) for \(dtype.rawValue) weight of shape \(shape)")
        }
        out.withUnsafeMutableBufferPointer { o in
            for (k, i) in indices.enumerated() { widenRows(i..<(i + 1), into: o.baseAddress! + k * d) }
        }
        return Tensor(uncheckedShape: [indices.count, d], data: out)
    }

    /// Rows `range` as a weight of their own (a copy in the same storage), e.g. Q of a packed
    /// `in_proj_weight`.
    public func rowSlice(_ range: Range<Int>) throws -> Weight {
        guard range.lowerBound >= 0, range.upperBound <= rows else {
            throw TensorError("rows \(range) out of range 0..<\(rows) for \(dtype.rawValue) weight of shape \(shape)")
        }
        let d = rowLength, shape = [range.count] + Array(self.shape.dropFirst())
        switch storage {
        case let .float32(data): return Weight(shape: shape, dtype: dtype, storage: .float32(Array(data[(range.lowerBound * d)..<(range.upperBound * d)])))
        case let .half(bits): return Weight(shape: shape, dtype: dtype, storage: .half(Array(bits[(range.lowerBound * d)..<(range.upperBound * d)])))
        }
    }

    /// Stacks weights with equal row lengths and dtype along the rows (a fused QKV projection).
    public static func concatenatingRows(_ parts: [Weight]) throws -> Weight {
        guard let first = parts.first else { throw TensorError("Weight.concatenatingRows: no weights given") }
        let tail = Array(first.shape.dropFirst())
        for p in parts where p.dtype != first.dtype || Array(p.shape.dropFirst()) != tail {
            throw TensorError("Weight.concatenatingRows: \(p.dtype.rawValue) \(p.shape) does not stack under \(first.dtype.rawValue) \(first.shape)")
        }
        let shape = [parts.reduce(0) { $0 + $1.rows }] + tail
        switch first.storage {
        case .float32:
            return Weight(shape: shape, dtype: .f32, storage: .float32(parts.flatMap { p -> [Float] in
                if case let .float32(d) = p.storage { return d } else { return [] }
            }))
        case .half:
            return Weight(shape: shape, dtype: first.dtype, storage: .half(parts.flatMap { p -> [UInt16] in
                if case let .half(d) = p.storage { return d } else { return [] }
            }))
        }
    }

    var halfFormat: storyloom_half_format { dtype == .bf16 ? STORYLOOM_HALF_BF16 : STORYLOOM_HALF_F16 }

    /// Writes rows `range` as float32 to `dst` (`range.count * rowLength` values).
    func widenRows(_ range: Range<Int>, into dst: UnsafeMutablePointer<Float>) {
        let d = rowLength, n = range.count * d
        guard n > 0 else { return }
        switch storage {
        case let .float32(data):
            data.withUnsafeBufferPointer { dst.update(from: $0.baseAddress! + range.lowerBound * d, count: n) }
        case let .half(bits):
            bits.withUnsafeBufferPointer { storyloom_half_to_float($0.baseAddress! + range.lowerBound * d, dst, n, halfFormat) }
        }
    }

    /// Calls `body` with the float32 values when stored as float32, or the raw bits otherwise.
    func withStorage<T>(float32 f: (UnsafePointer<Float>) -> T, half h: (UnsafePointer<UInt16>) -> T) -> T {
        switch storage {
        case let .float32(data): data.withUnsafeBufferPointer { f($0.baseAddress!) }
        case let .half(bits): bits.withUnsafeBufferPointer { h($0.baseAddress!) }
        }
    }

    /// How many values are NaN or ±inf (an f16 export that overflowed holds them).
    public var nonFiniteCount: Int {
        switch storage {
        case let .float32(data): return data.reduce(0) { $0 + ($1.isFinite ? 0 : 1) }
        case let .half(bits):
            // All-ones exponent: 5 bits at 10 for f16, 8 bits at 7 for bf16.
            let (mask, shift): (UInt16, UInt16) = dtype == .bf16 ? (0xff, 7) : (0x1f, 10)
            return bits.reduce(0) { $0 + (($1 >> shift) & mask == mask ? 1 : 0) }
        }
    }

    /// Whether the AVX2/F16C kernels widen half-precision weights on this CPU (else portable scalar code).
    public static var vectorizedHalfKernels: Bool { storyloom_half_kernels_vectorized() != 0 }
}
