import CCPUFeatures
import COpenBLAS
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The x86 extensions that decide which OpenBLAS kernels this CPU can run (all false elsewhere).
public struct CPUFeatures: Sendable, Equatable {
    public var x86_64: Bool
    public var avx2: Bool
    public var fma: Bool
    public var avx512f: Bool

    public init(x86_64: Bool = true, avx2: Bool, fma: Bool, avx512f: Bool = false) {
        self.x86_64 = x86_64
        self.avx2 = avx2
        self.fma = fma
        self.avx512f = avx512f
    }

    /// This machine's, from cpuid (and XGETBV: the OS must save the wide registers too).
    public static let current: CPUFeatures = {
        let f = sl_cpu_features_detect()
        return CPUFeatures(x86_64: f.is_x86_64 != 0, avx2: f.avx2 != 0, fma: f.fma != 0, avx512f: f.avx512f != 0)
    }()

    /// `avx2 fma` style list of the flags that are present, for reports.
    public var summary: String {
        guard x86_64 else { return "not x86-64 (no AVX)" }
        let flags = [("avx2", avx2), ("fma", fma), ("avx512f", avx512f)]
        return flags.map { "\($0.0) \($0.1 ? "yes" : "no")" }.joined(separator: ", ")
    }
}

/// Choosing OpenBLAS's kernels without the user's help.
///
/// OpenBLAS (built with DYNAMIC_ARCH) picks its kernels once, when the library loads, from cpuid or from
/// `OPENBLAS_CORETYPE`. 0.3.21 does not recognise some CPUs and falls back to generic SSE kernels (sgemm
/// ~12 instead of ~60 GFLOP/s); on other machines the environment sets `OPENBLAS_CORETYPE` on purpose,
/// because newer kernels compute wrong results there. So: a user's `OPENBLAS_CORETYPE` is respected;
/// otherwise, when OpenBLAS reports a pre-AVX2 core on a CPU with AVX2 and FMA, the process re-executes
/// itself once with `OPENBLAS_CORETYPE=Haswell` (the AVX2 kernels every such CPU runs correctly).
/// Since the variable is only read at load, this has to be an exec, at the very start of `main`.
public enum BLASKernels {
    public static let coretypeVariable = "OPENBLAS_CORETYPE"
    /// Set (to the core chosen) in the re-executed process, so it never re-executes again, and so reports
    /// can tell Storyloom's choice from the user's.
    public static let guardVariable = "STORYLOOM_BLAS_REEXEC"
    /// The kernel set chosen on re-execution: AVX2 + FMA, nothing newer.
    public static let safeAVX2Core = "Haswell"

    /// OpenBLAS core names whose kernels use no AVX2 (its generic fallback is `Prescott`). A deny-list,
    /// so an unknown (newer) name is never downgraded to Haswell.
    static let preAVX2Cores: Set<String> = [
        "generic", "katmai", "coppermine", "northwood", "prescott", "banias", "atom", "core2", "penryn",
        "dunnington", "nehalem", "athlon", "opteron", "opteron_sse3", "barcelona", "bobcat", "nano",
        "sandybridge", "bulldozer", "piledriver", "steamroller",
    ]

    public enum Decision: Sendable, Equatable {
        /// `OPENBLAS_CORETYPE` comes from the user's environment: respected as it is.
        case userChoice(String)
        /// This process is the re-executed one, running with the core Storyloom chose.
        case chosenByStoryloom(String)
        /// OpenBLAS's own choice already uses AVX2 (or newer, or non-x86) kernels.
        case keep
        /// Generic kernels are right: the CPU lacks AVX2 or FMA.
        case cpuLacksAVX2FMA
        /// This OpenBLAS is built for one core (no DYNAMIC_ARCH), so `OPENBLAS_CORETYPE` would be ignored.
        case notDynamic
        /// The guard is set but `OPENBLAS_CORETYPE` is not (something removed it): never re-execute twice.
        case guardWithoutCoretype
        /// Re-execute with `OPENBLAS_CORETYPE` set to this core.
        case reexecute(coretype: String)
    }

    /// The decision as a pure function of the environment, what OpenBLAS reports and the CPU's flags.
    public static func decide(environment: [String: String], coreName: String, config: String,
                              cpu: CPUFeatures) -> Decision {
        let guardValue = environment[guardVariable].flatMap { $0.isEmpty ? nil : $0 }
        if let chosen = environment[coretypeVariable], !chosen.isEmpty {
            return guardValue == chosen ? .chosenByStoryloom(chosen) : .userChoice(chosen)
        }
        if guardValue != nil { return .guardWithoutCoretype }
        guard config.split(separator: " ").contains("DYNAMIC_ARCH") else { return .notDynamic }
        guard preAVX2Cores.contains(coreName.lowercased()) else { return .keep }
        guard cpu.avx2 && cpu.fma else { return .cpuLacksAVX2FMA }
        return .reexecute(coretype: safeAVX2Core)
    }

    /// OpenBLAS's idle workers spin (calling `sched_yield`) for 2^n cycles after each threaded call before
    /// they sleep; 0.3.21's default n = 28 is about 0.1 s. On two cores a spinning worker takes a core's share
    /// from Storyloom's own parallel loops (fused attention, Winograd transforms, GroupNorm) running in
    /// between: `perf` put 14% of a 2-thread SD UNet step in the scheduler. n = 20 (about 0.3 ms) still
    /// bridges the gaps between back-to-back products. `bench sd --quick --threads 2` (2026-11-30, same
    /// quiet hour): UNet 64×64 11.4–12.9 s → 10.1 s, 32×32 2.7–3.2 → 2.3 s, VAE decode 11.4–13.5 → 10.9 s;
    /// `bench llm` moved within its noise. Read only at load, like the core type.
    public static let threadTimeoutVariable = "OPENBLAS_THREAD_TIMEOUT"
    public static let chosenThreadTimeout = "20"
    /// Set (to the value chosen) beside `OPENBLAS_THREAD_TIMEOUT` when Storyloom chose it.
    public static let threadTimeoutGuard = "STORYLOOM_BLAS_THREAD_TIMEOUT"

    public enum ThreadTimeout: Sendable, Equatable {
        /// From the user's environment: respected.
        case userChoice(String)
        /// Chosen by Storyloom (this process is the re-executed one).
        case chosenByStoryloom(String)
        /// One core: OpenBLAS starts no workers, so nothing to choose.
        case singleCore
        /// Re-execute with this value.
        case set(String)
    }

    /// The thread-timeout decision as a pure function of the environment and the core count.
    public static func decideThreadTimeout(environment: [String: String], cores: Int) -> ThreadTimeout {
        if let value = environment[threadTimeoutVariable], !value.isEmpty {
            return environment[threadTimeoutGuard] == value ? .chosenByStoryloom(value) : .userChoice(value)
        }
        return cores > 1 ? .set(chosenThreadTimeout) : .singleCore
    }

    /// Why the re-execution did not happen, when `execv` failed (the process then runs OpenBLAS's choice).
    private static let launchFailure = Mutex<String?>(nil)

    /// Call first thing in `main`, before any BLAS work: re-executes the process once (same pid, argv and
    /// environment plus the variables chosen) when ``decide`` or ``decideThreadTimeout`` says so; returns
    /// otherwise. The re-executed process finds the variables set and never re-executes again.
    public static func chooseAtLaunch() {
        let environment = ProcessInfo.processInfo.environment
        var variables: [(String, String)] = []
        if case .reexecute(let core) = decide(environment: environment, coreName: coreName, config: config, cpu: .current) {
            variables += [(coretypeVariable, core), (guardVariable, core)]
        }
        if config.contains("USE_OPENMP") == false,
           case .set(let value) = decideThreadTimeout(environment: environment, cores: ProcessInfo.processInfo.activeProcessorCount) {
            variables += [(threadTimeoutVariable, value), (threadTimeoutGuard, value)]
        }
        guard !variables.isEmpty, let path = executablePath else { return }
        for (name, value) in variables { setenv(name, value, 1) }
        execv(path, CommandLine.unsafeArgv)
        // Only reached when execv failed: carry on with OpenBLAS's own choices and say so in reports.
        let reason = String(cString: strerror(errno))
        for (name, _) in variables { unsetenv(name) }
        launchFailure.withLock { $0 = "execv(\(path)) failed: \(reason)" }
    }

    /// The running executable: `/proc/self/exe` on Linux (immune to argv[0] and PATH), else Foundation's.
    static var executablePath: String? {
        #if os(Linux)
        return "/proc/self/exe"
        #else
        return Bundle.main.executablePath
        #endif
    }

    /// `openblas_get_config()`, e.g. `OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH NO_AFFINITY Haswell MAX_THREADS=64`.
    public static var config: String {
        guard let c = openblas_get_config() else { return "unknown" }
        return String(cString: c)
    }

    /// The kernel set OpenBLAS selected at load (`openblas_get_corename()`), e.g. `Haswell`, `Zen`, `Prescott`.
    public static var coreName: String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
    }

    /// What this process runs and why, for `storyloom doctor` and benchmark notes.
    public struct Report: Sendable {
        public var config: String
        public var coreName: String
        public var decision: Decision
        public var launchFailure: String?
        public var cpu: CPUFeatures
        public var threads: Int
        public var blasThreads: Int
        public var threadTimeout: ThreadTimeout

        /// Whether this process is the re-executed one.
        public var reexecuted: Bool { !reexecutedFor.isEmpty }

        /// The variables this process was re-executed to set.
        public var reexecutedFor: [String] {
            var names: [String] = []
            if case .chosenByStoryloom = decision { names.append(coretypeVariable) }
            if case .chosenByStoryloom = threadTimeout { names.append(threadTimeoutVariable) }
            return names
        }

        /// One line: the core and who chose it.
        public var kernels: String { "OpenBLAS core \(coreName) (\(why))" }

        public var why: String {
            switch decision {
            case .userChoice(let c): return "\(coretypeVariable)=\(c) from the environment, respected"
            case .chosenByStoryloom(let c):
                return "re-executed with \(coretypeVariable)=\(c): OpenBLAS had chosen generic kernels on this AVX2+FMA CPU"
            case .keep: return "OpenBLAS's own choice"
            case .cpuLacksAVX2FMA: return "OpenBLAS's own choice; this CPU lacks AVX2 or FMA"
            case .notDynamic: return "this OpenBLAS is built for one core (no DYNAMIC_ARCH); \(coretypeVariable) would be ignored"
            case .guardWithoutCoretype: return "\(guardVariable) is set without \(coretypeVariable): not re-executing twice"
            case .reexecute(let c):
                return "generic kernels on an AVX2+FMA CPU; re-executing with \(coretypeVariable)=\(c) failed: \(launchFailure ?? "not attempted")"
            }
        }

        public var timeoutDescription: String {
            switch threadTimeout {
            case .userChoice(let v): return "2^\(v) cycles (\(threadTimeoutVariable)=\(v) from the environment, respected)"
            case .chosenByStoryloom(let v): return "2^\(v) cycles (\(threadTimeoutVariable)=\(v), set by Storyloom: re-executed)"
            case .singleCore: return "no workers (one core)"
            case .set(let v):
                return "2^28 cycles, OpenBLAS's default (re-executing with \(threadTimeoutVariable)=\(v) "
                    + (launchFailure.map { "failed: \($0))" } ?? "did not happen)")
            }
        }

        public var lines: [String] {
            [
                "OpenBLAS: \(config)",
                "core:     \(coreName)",
                "chosen:   \(why)",
                "re-executed: \(reexecuted ? "yes, to set " + reexecutedFor.joined(separator: " and ") : "no")",
                "threads:  \(threads) (OpenBLAS \(blasThreads))",
                "idle workers spin: \(timeoutDescription)",
                "cpu:      \(cpu.summary)",
            ]
        }
    }

    public static var report: Report {
        let core = coreName, cfg = config
        return Report(config: cfg, coreName: core,
                      decision: decide(environment: ProcessInfo.processInfo.environment, coreName: core, config: cfg, cpu: .current),
                      launchFailure: launchFailure.withLock { $0 }, cpu: .current,
                      threads: Threads.count, blasThreads: Int(openblas_get_num_threads()),
                      threadTimeout: decideThreadTimeout(environment: ProcessInfo.processInfo.environment,
                                                         cores: ProcessInfo.processInfo.activeProcessorCount))
    }
}
