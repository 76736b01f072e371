import Foundation

/// A dense float32 tensor: a shape and contiguous row-major storage.
///
/// Deliberately simple — no strides, no autograd, no lazy views. Ops are free functions in
/// this module (`linear`, `layerNorm`, `attention`, …) that read whole rows through unsafe
/// buffer pointers so the compiler can vectorise the inner loops. Weights stored as f16/bf16
/// on disk are converted to f32 when read as a `Tensor`; weight matrices may instead stay f16/bf16
/// as a `Weight` (`Weight.swift`), widened a tile at a time inside products.
public struct Tensor: Sendable, Equatable {
    /// Extent of each dimension, outermost first.
    public private(set) var shape: [Int]
    /// `shape.product` values, row-major.
    public var data: [Float]

    /// A tensor over existing values; throws if the count disagrees with the shape.
    public init(shape: [Int], data: [Float]) throws {
        let n = try Tensor.elementCount(shape)
        guard n == data.count else {
            throw TensorError("tensor of shape \(shape) needs \(n) values, got \(data.count)")
        }
        self.shape = shape
        self.data = data
    }

    /// A tensor for internal use where the caller has already ensured `data.count` matches.
    init(uncheckedShape shape: [Int], data: [Float]) {
        assert(shape.reduce(1, *) == data.count)
        self.shape = shape
        self.data = data
    }

    /// A tensor filled with one value.
    public init(zeros shape: [Int], value: Float = 0) {
        let n = shape.reduce(1) { $0 * max($1, 0) }
        self.shape = shape
        self.data = [Float](repeating: value, count: n)
    }

    /// Number of elements.
    public var count: Int { data.count }
    /// Number of dimensions.
    public var rank: Int { shape.count }

    /// The size of the last dimension (the row length for row-wise ops); 1 for a scalar.
    public var lastDimension: Int { shape.last ?? 1 }
    /// The number of rows when viewed as a `[rows, lastDimension]` matrix.
    public var rowCount: Int { lastDimension == 0 ? 0 : count / lastDimension }

    /// The same values under another shape with the same element count.
    public func reshaped(_ newShape: [Int]) throws -> Tensor {
        let n = try Tensor.elementCount(newShape)
        guard n == count else {
            throw TensorError("cannot reshape \(shape) (\(count) values) to \(newShape)")
        }
        return Tensor(uncheckedShape: newShape, data: data)
    }

    /// Row `i` of the `[rowCount, lastDimension]` view.
    public func row(_ i: Int) -> [Float] {
        let d = lastDimension
        return Array(data[(i * d)..<((i + 1) * d)])
    }

    /// Rows `indices` of the `[rowCount, lastDimension]` view, gathered into a `[indices.count, d]` tensor
    /// (an embedding lookup when `self` is an embedding table).
    public func gatherRows(_ indices: [Int]) throws -> Tensor {
        let d = lastDimension
        let rows = rowCount
        var out = [Float](repeating: 0, count: indices.count * d)
        for (k, i) in indices.enumerated() {
            guard i >= 0 && i < rows else {
                throw TensorError("row index \(i) out of range 0..<\(rows) for tensor of shape \(shape)")
            }
            out.withUnsafeMutableBufferPointer { o in
                data.withUnsafeBufferPointer { s in
                    for j in 0..<d { o[k * d + j] = s[i * d + j] }
                }
            }
        }
        return Tensor(uncheckedShape: [indices.count, d], data: out)
    }

    /// Validates a shape and returns its element count.
    static func elementCount(_ shape: [Int]) throws -> Int {
        var n = 1
        for d in shape {
            guard d >= 0 else { throw TensorError("negative dimension in shape \(shape)") }
            let (p, overflow) = n.multipliedReportingOverflow(by: d)
            guard !overflow else { throw TensorError("shape \(shape) overflows Int") }
            n = p
        }
        return n
    }
}

/// `count` floats left uninitialised, for an output every element of which the caller writes before
/// reading (a product with beta 0, a copy): zero-filling first measured ~8% of a small UNet step.
@inline(__always)
public func uninitializedFloats(_ count: Int) -> [Float] {
    [Float](unsafeUninitializedCapacity: count) { _, initialized in initialized = count }
}

/// The one error type of Tensor: an operation given inputs it cannot work with (shapes that disagree, bad
/// indices), or a weights file (safetensors, torch pickle) it cannot read — located by file and tensor name.
public struct TensorError: Error, CustomStringConvertible, Sendable, Equatable {
    public var file: String?
    public var tensor: String?
    public var message: String

    public init(_ message: String) { self.message = message }

    public init(file: URL, tensor: String? = nil, _ message: String) {
        self.file = file.path
        self.tensor = tensor
        self.message = message
    }

    public var description: String {
        guard let file else { return message }
        if let tensor { return "\(file): tensor '\(tensor)': \(message)" }
        return "\(file): \(message)"
    }
}
