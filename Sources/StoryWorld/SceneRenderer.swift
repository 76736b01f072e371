import Foundation
import Imaging

/// Renders scene graphs to RGB images with analytic anti-aliasing.
///
/// Every edge is a signed distance `d` (image units); a pixel's coverage is
/// `clamp(0.5 - d / pixelSize, 0, 1)`, one sample per pixel, so 10,000 scenes render in seconds at
/// 64×64 and edges still show intermediate values.
public enum SceneRenderer {
    /// Renders `scene` as a `size`×`size` RGB image (`size` ≥ 1).
    public static func render(_ scene: Scene, size: Int) -> Image {
        let n = max(size, 1)
        var canvas = Canvas(size: n)
        canvas.rgb = BackdropCache.shared.backdrop(scene.background, size: n)
        for object in scene.drawingOrder {
            canvas.paintObject(object)
        }
        return canvas.image()
    }

    /// The nominal sky colour at the top of the image and ground colour at the bottom, per background
    /// (what the corners of a render show, decorations aside).
    public static func cornerColours(_ background: Background) -> (top: (UInt8, UInt8, UInt8), bottom: (UInt8, UInt8, UInt8)) {
        let p = BackgroundPalette.of(background)
        func q(_ c: RGB) -> (UInt8, UInt8, UInt8) { (quantise(c.r), quantise(c.g), quantise(c.b)) }
        return (q(p.skyTop), q(p.groundBottom))
    }

    @inline(__always) static func quantise(_ v: Double) -> UInt8 { UInt8(clamp(v, 0, 255).rounded()) }
}

/// Painted backgrounds per (background, size): a backdrop is the same for every scene, so it is
/// computed once and copied (the lock makes the shared cache safe across threads).
final class BackdropCache: @unchecked Sendable {
    static let shared = BackdropCache()
    private let lock = NSLock()
    private var store: [String: [Double]] = [:]

    func backdrop(_ b: Background, size: Int) -> [Double] {
        let key = "\(b.rawValue)-\(size)"
        lock.lock()
        let hit = store[key]
        lock.unlock()
        if let hit { return hit }
        var canvas = Canvas(size: size)
        canvas.paintBackground(b)
        // Bounded: at most the 8 backgrounds at a few sizes, and nothing above 1024 px.
        if size <= 1024 {
            lock.lock()
            if store.count >= 32 { store.removeAll() }
            store[key] = canvas.rgb
            lock.unlock()
        }
        return canvas.rgb
    }
}

/// Sky and ground colours and the horizon of a background.
struct BackgroundPalette {
    var skyTop: RGB, skyBottom: RGB, groundTop: RGB, groundBottom: RGB
    var horizon: Double

    static func of(_ b: Background) -> BackgroundPalette {
        switch b {
        case .day: return .init(skyTop: RGB(95, 170, 240), skyBottom: RGB(185, 220, 250), groundTop: RGB(110, 195, 85), groundBottom: RGB(60, 150, 55), horizon: 0.55)
        case .night: return .init(skyTop: RGB(8, 12, 45), skyBottom: RGB(40, 45, 100), groundTop: RGB(25, 65, 45), groundBottom: RGB(12, 35, 25), horizon: 0.55)
        case .beach: return .init(skyTop: RGB(130, 195, 250), skyBottom: RGB(200, 235, 255), groundTop: RGB(240, 215, 160), groundBottom: RGB(215, 185, 115), horizon: 0.62)
        case .snow: return .init(skyTop: RGB(160, 175, 200), skyBottom: RGB(210, 220, 232), groundTop: RGB(248, 250, 253), groundBottom: RGB(222, 230, 242), horizon: 0.55)
        case .indoor: return .init(skyTop: RGB(200, 180, 150), skyBottom: RGB(230, 212, 178), groundTop: RGB(165, 110, 65), groundBottom: RGB(120, 78, 45), horizon: 0.6)
        case .forest: return .init(skyTop: RGB(140, 195, 225), skyBottom: RGB(195, 228, 238), groundTop: RGB(75, 125, 50), groundBottom: RGB(45, 90, 35), horizon: 0.55)
        case .city: return .init(skyTop: RGB(175, 195, 218), skyBottom: RGB(222, 228, 236), groundTop: RGB(110, 110, 115), groundBottom: RGB(80, 80, 86), horizon: 0.58)
        case .desert: return .init(skyTop: RGB(245, 185, 110), skyBottom: RGB(255, 228, 170), groundTop: RGB(232, 185, 95), groundBottom: RGB(205, 145, 65), horizon: 0.56)
        }
    }
}

/// A floating-point RGB canvas that paints are composited onto.
struct Canvas {
    let size: Int
    let pixel: Double          // pixel size in image units
    var rgb: [Double]

    init(size: Int) {
        self.size = size
        pixel = 1 / Double(size)
        rgb = [Double](repeating: 0, count: size * size * 3)
    }

    /// Coverage of a pixel by a shape at distance `d` (image units).
    @inline(__always) func coverage(_ d: Double) -> Double { clamp(0.5 - d / pixel, 0, 1) }

    @inline(__always) mutating func blend(_ i: Int, _ c: RGB, _ a: Double) {
        if a <= 0 { return }
        rgb[i] += (c.r - rgb[i]) * a
        rgb[i + 1] += (c.g - rgb[i + 1]) * a
        rgb[i + 2] += (c.b - rgb[i + 2]) * a
    }

    func image() -> Image {
        Image(width: size, height: size, channels: 3, pixels: rgb.map { SceneRenderer.quantise($0) })
    }

    // MARK: backgrounds

    mutating func paintBackground(_ b: Background) {
        let p = BackgroundPalette.of(b)
        for y in 0..<size {
            let v = (Double(y) + 0.5) * pixel
            for x in 0..<size {
                let u = (Double(x) + 0.5) * pixel
                let i = (y * size + x) * 3
                let horizon = b == .desert ? p.horizon + 0.035 * triangleWave(u * 1.5) : p.horizon
                let sky = p.skyTop.mixed(with: p.skyBottom, clamp(v / horizon, 0, 1))
                let ground = p.groundTop.mixed(with: p.groundBottom, clamp((v - horizon) / (1 - horizon), 0, 1))
                var c = sky
                let g = coverage(horizon - v)   // distance to the horizon line, negative below it
                c = c.mixed(with: ground, g)
                rgb[i] = c.r; rgb[i + 1] = c.g; rgb[i + 2] = c.b
                decorate(b, i, Vec2(u, v), p)
            }
        }
    }

    /// Per-background decoration: sun, moon, sea, snowflakes, wallpaper, tree line, skyline, dunes.
    mutating func decorate(_ b: Background, _ i: Int, _ q: Vec2, _ p: BackgroundPalette) {
        switch b {
        case .day, .desert:
            let sunColour = b == .day ? RGB(255, 232, 90) : RGB(255, 248, 215)
            blend(i, sunColour, coverage(Shape.circle(Vec2(0.03, 0.03), 0.1).distance(q)))
        case .night:
            let moon = Shape.subtract(.circle(Vec2(0.07, 0.07), 0.075), .circle(Vec2(0.105, 0.045), 0.065))
            blend(i, RGB(240, 238, 205), coverage(moon.distance(q)))
            // A few faint fixed background stars (tiny, not five-pointed).
            for s in [Vec2(0.42, 0.06), Vec2(0.63, 0.13), Vec2(0.3, 0.2), Vec2(0.9, 0.28), Vec2(0.55, 0.35)] {
                blend(i, RGB(230, 230, 255), 0.8 * coverage((q - s).length - 0.006))
            }
        case .beach:
            let seaTop = 0.5, seaBottom = 0.62 + 0.01 * triangleWave(q.x * 10)
            let sea = RGB(35, 120, 200).mixed(with: RGB(70, 160, 215), clamp((q.y - seaTop) / 0.12, 0, 1))
            blend(i, sea, min(coverage(seaTop - q.y), coverage(q.y - seaBottom)))
        case .snow:
            // Snowflakes on a jittered grid; the jitter comes from a hash of the cell, not a PRNG stream.
            let cell = 0.125
            let cx = Int(q.x / cell), cy = Int(q.y / cell)
            if Double(cy) * cell < p.horizon {
                let h = WorldRandom.mix(UInt64(cx * 31 + cy * 1009 + 7))
                let jx = Double(h & 0xFF) / 255 - 0.5, jy = Double((h >> 8) & 0xFF) / 255 - 0.5
                let centre = Vec2((Double(cx) + 0.5 + 0.5 * jx) * cell, (Double(cy) + 0.5 + 0.5 * jy) * cell)
                blend(i, RGB(255, 255, 255), 0.9 * coverage((q - centre).length - 0.011))
            }
        case .indoor:
            if q.y < p.horizon {
                // Wallpaper stripes every 0.1 units, and a skirting board at the floor line.
                let stripe = abs(q.x.truncatingRemainder(dividingBy: 0.1) - 0.05) - 0.018
                blend(i, RGB(240, 228, 200), 0.6 * coverage(stripe))
            } else {
                let plank = abs((q.y - p.horizon).truncatingRemainder(dividingBy: 0.09) - 0.045) - 0.04
                blend(i, RGB(95, 60, 35), 0.5 * coverage(-plank))
            }
            blend(i, RGB(245, 240, 230), coverage(abs(q.y - p.horizon - 0.012) - 0.012))
        case .forest:
            // A dark tree line of pine triangles along the horizon.
            let period = 0.0625
            let k = (q.x / period).rounded(.down)
            let local = q.x - (k + 0.5) * period
            let top = p.horizon - (0.11 + 0.05 * triangleWave(k * 0.37))
            let pine = Shape.triangle(Vec2(-0.045, p.horizon + 0.01), Vec2(0.045, p.horizon + 0.01), Vec2(0, top))
            blend(i, RGB(30, 85, 45), coverage(pine.distance(Vec2(local, q.y))))
        case .city:
            // A skyline of grey blocks with fixed heights, then a road line.
            let blocks: [Double] = [0.2, 0.32, 0.24, 0.38, 0.18, 0.3, 0.26, 0.35]
            let w = 1.0 / Double(blocks.count)
            let k = min(Int(q.x / w), blocks.count - 1)
            let top = p.horizon - blocks[k]
            let block = Shape.box(Vec2((Double(k) + 0.5) * w, (top + p.horizon) / 2), Vec2(w / 2 - 0.008, (p.horizon - top) / 2), 0)
            let shade = k % 2 == 0 ? RGB(125, 130, 148) : RGB(145, 148, 160)
            blend(i, shade, coverage(block.distance(q)))
            blend(i, RGB(230, 225, 150), 0.8 * coverage(abs(q.y - 0.94) - 0.006))
        }
    }

    /// A triangle wave in [-1, 1] with period 1 (deterministic everywhere, unlike `sin`).
    func triangleWave(_ t: Double) -> Double {
        let f = t - t.rounded(.down)
        return 4 * abs(f - 0.5) - 1
    }

    // MARK: objects

    mutating func paintObject(_ o: SceneObject) {
        let (anchor, unit) = ObjectShapes.frame(o)
        let paints = ObjectShapes.paints(o, unit: unit)
        let (bx0, by0, bx1, by1) = ObjectShapes.bounds(o.kind)
        // Pixel rectangle covering the local bounds (y flips: local up is image down).
        let x0 = max(0, Int(((anchor.x + bx0 * unit) / pixel).rounded(.down)) - 1)
        let x1 = min(size - 1, Int(((anchor.x + bx1 * unit) / pixel).rounded(.up)) + 1)
        let y0 = max(0, Int(((anchor.y - by1 * unit) / pixel).rounded(.down)) - 1)
        let y1 = min(size - 1, Int(((anchor.y - by0 * unit) / pixel).rounded(.up)) + 1)
        guard x0 <= x1, y0 <= y1 else { return }
        for y in y0...y1 {
            let v = (Double(y) + 0.5) * pixel
            for x in x0...x1 {
                let u = (Double(x) + 0.5) * pixel
                let local = Vec2((u - anchor.x) / unit, (anchor.y - v) / unit)
                let i = (y * size + x) * 3
                for paint in paints {
                    let d = paint.shape.distance(local) * unit
                    blend(i, paint.colour, paint.opacity * coverage(d))
                }
            }
        }
    }
}

extension SceneRenderer {
    /// A point well inside `object`'s main colour region, as fractions of the image width and height
    /// (x right, y down). Attribute checkers sample the rendered colour there.
    public static func probePoint(_ object: SceneObject) -> (x: Double, y: Double) {
        let (anchor, unit) = ObjectShapes.frame(object)
        let local = ObjectShapes.probe(object.kind)
        return (anchor.x + local.x * unit, anchor.y - local.y * unit)
    }

    /// The object's bounding box as fractions of the image (minX, minY, maxX, maxY), y down.
    public static func bounds(_ object: SceneObject) -> (minX: Double, minY: Double, maxX: Double, maxY: Double) {
        let (anchor, unit) = ObjectShapes.frame(object)
        let (x0, y0, x1, y1) = ObjectShapes.bounds(object.kind)
        return (anchor.x + x0 * unit, anchor.y - y1 * unit, anchor.x + x1 * unit, anchor.y - y0 * unit)
    }
}

extension ObjectShapes {
    /// A local point inside the object's fill, away from highlights, doors, windows and wheels.
    static func probe(_ kind: ObjectKind) -> Vec2 {
        switch kind {
        case .ball: return Vec2(0.05, 0.22)
        case .box: return Vec2(0.18, 0.2)
        case .tree: return Vec2(0, 0.74)
        case .house: return Vec2(0.16, 0.12)
        case .cat: return Vec2(0.05, 0.27)
        case .car: return Vec2(0, 0.27)
        case .star: return Vec2(0, 0)
        case .balloon: return Vec2(0.15, 0)
        }
    }
}
