#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Dispatch

/// A value handed to parallel workers that write disjoint parts of it.
package struct UncheckedSendable<T>: @unchecked Sendable {
    package var value: T
    package init(_ value: T) { self.value = value }
}

package func activeProcessorCount() -> Int {
    Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
}

/// One step of a two-stage pipeline: the `slices` tasks of `prepare` for
/// this chunk and, as one more task, `acceptPrevious` (the in-order stage for
/// the chunk before) share the cores; returns what the in-order stage returned.
/// `serial`: each task in turn on the calling thread, none on another.
package func pipelineStep<R: Sendable>(slices: Int, serial: Bool = false, acceptPrevious: (@Sendable () -> R?)?,
                                       prepare: @Sendable (Int) -> Void) -> R? {
    if serial {
        let result = acceptPrevious?() ?? nil
        for slice in 0..<slices { prepare(slice) }
        return result
    }
    var result: R?
    withUnsafeMutablePointer(to: &result) { slot in
        let out = UncheckedSendable(slot)
        guard let accept = acceptPrevious else { return concurrentPerform(slices, prepare) }
        concurrentPerform(slices + 1) { t in
            if t == 0 { out.value.pointee = accept() } else { prepare(t - 1) }
        }
    }
    return result
}

package func concurrentPerform(_ n: Int, _ body: @Sendable (Int) -> Void) {
    if n == 1 {
        body(0)
    } else {
        DispatchQueue.concurrentPerform(iterations: n, execute: body)
    }
}

/// Puts the calling thread in Linux's idle scheduling class (`SCHED_IDLE`):
/// it runs only on a core that nothing else wants, so work done alongside a
/// busy thread does not slow it.
package func runAtIdlePriority() {
    #if os(Linux)
    var parameters = sched_param()
    let idle: Int32 = 5  // SCHED_IDLE (<linux/sched.h>), which Glibc's module does not export
    _ = sched_setscheduler(0, idle, &parameters)  // 0: the calling thread
    #endif
}
