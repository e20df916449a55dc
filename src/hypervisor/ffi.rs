//! The only place in Twofold with `unsafe` code: the few libvirt calls that the `virt` crate
//! does not wrap, or wraps in a way we cannot use, made directly through `virt-sys`.
//!
//! Only functions present in libvirt 9.0 (Debian 12) may be called here: `virt-sys` also
//! declares newer ones, which compile but fail to link.
//!
//! - domain lifecycle events ([`register_lifecycle`]): `virt` 0.5 has no event registration;
//! - aborting a job ([`abort_job`]): not wrapped;
//! - waking the event loop ([`wake_event_loop`]): `virt`'s timeout wrapper frees the wrong
//!   pointer when registration fails and lets a panic unwind into C;
//! - job statistics ([`job_stats`]): `virt`'s `Domain::job_stats` builds a `Vec` from the array
//!   libvirt allocated, which is undefined behaviour when libvirt returns no job (a null array,
//!   exactly what polling sees before a migration starts and after it ends) and panics on an
//!   unexpected parameter type; here the array is read with libvirt's own accessors and freed
//!   with `virTypedParamsFree`.

use std::ffi::{c_int, c_ulonglong, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

use virt::connect::Connect;
use virt::domain::Domain;
use virt::error::Error as VirtError;
use virt_sys as sys;

use super::lifecycle::{LifecycleEvent, LifecycleKind};

/// Where lifecycle events of one subscription go. Called on the libvirt event thread.
pub(crate) type LifecycleSink = Box<dyn Fn(LifecycleEvent) + Send + 'static>;

/// What libvirt holds (as the callback's opaque pointer) for one subscription.
struct LifecycleState {
    host: String,
    sink: LifecycleSink,
}

/// The C signature of a `VIR_DOMAIN_EVENT_ID_LIFECYCLE` callback
/// (`virConnectDomainEventCallback`).
type LifecycleCallback =
    unsafe extern "C" fn(sys::virConnectPtr, sys::virDomainPtr, c_int, c_int, *mut c_void) -> c_int;

/// The generic type `virConnectDomainEventRegisterAny` takes; libvirt casts it back to the
/// event-specific signature according to the event id (the C macro `VIR_DOMAIN_EVENT_CALLBACK`).
type GenericCallback = unsafe extern "C" fn(sys::virConnectPtr, sys::virDomainPtr, *mut c_void);

unsafe extern "C" fn lifecycle_callback(
    _conn: sys::virConnectPtr,
    dom: sys::virDomainPtr,
    event: c_int,
    detail: c_int,
    opaque: *mut c_void,
) -> c_int {
    // SAFETY: `opaque` is the `LifecycleState` boxed in `register_lifecycle`; libvirt keeps it
    // until it calls `lifecycle_free`, which it does only after the last callback returned.
    let state = unsafe { &*(opaque as *const LifecycleState) };
    let domain = if dom.is_null() {
        String::new()
    } else {
        // SAFETY: `dom` is valid for the duration of the callback; the name belongs to it and
        // must not be freed.
        let name = unsafe { sys::virDomainGetName(dom) };
        if name.is_null() {
            String::new()
        } else {
            // SAFETY: libvirt returns a NUL-terminated string.
            unsafe { CStr::from_ptr(name) }
                .to_string_lossy()
                .into_owned()
        }
    };
    let Some(kind) = LifecycleKind::from_raw(event) else {
        tracing::debug!(host = %state.host, %domain, event, "ignoring an unknown lifecycle event");
        return 0;
    };
    let ev = LifecycleEvent {
        host: state.host.clone(),
        domain,
        kind,
        detail,
    };
    // A panic must not unwind into libvirt's C frames (that aborts the process).
    if catch_unwind(AssertUnwindSafe(|| (state.sink)(ev))).is_err() {
        tracing::error!(host = %state.host, "a lifecycle event handler panicked");
    }
    0
}

unsafe extern "C" fn lifecycle_free(opaque: *mut c_void) {
    if !opaque.is_null() {
        // SAFETY: libvirt calls this exactly once, with the pointer `register_lifecycle` gave it.
        drop(unsafe { Box::from_raw(opaque as *mut LifecycleState) });
    }
}

/// A registered lifecycle callback; deregistering happens on drop.
pub(crate) struct LifecycleRegistration {
    // Holds a reference so the connection outlives the registration.
    conn: Connect,
    id: c_int,
}

/// Register `sink` for lifecycle events of every domain on `conn`.
///
/// Wraps <https://libvirt.org/html/libvirt-libvirt-domain.html#virConnectDomainEventRegisterAny>
/// with `VIR_DOMAIN_EVENT_ID_LIFECYCLE`. Events are delivered by the default event loop, which
/// must have been registered before `conn` was opened.
pub(crate) fn register_lifecycle(
    conn: &Connect,
    host: &str,
    sink: LifecycleSink,
) -> Result<LifecycleRegistration, VirtError> {
    let state = Box::into_raw(Box::new(LifecycleState {
        host: host.to_string(),
        sink,
    }));
    // SAFETY: libvirt calls the callback with the lifecycle signature for this event id; the
    // cast only changes the pointer's declared type, as VIR_DOMAIN_EVENT_CALLBACK does in C.
    let generic =
        unsafe { std::mem::transmute::<LifecycleCallback, GenericCallback>(lifecycle_callback) };
    // SAFETY: `conn` is a live connection; `state` stays valid until libvirt calls the free
    // callback.
    let id = unsafe {
        sys::virConnectDomainEventRegisterAny(
            conn.as_ptr(),
            ptr::null_mut(),
            sys::VIR_DOMAIN_EVENT_ID_LIFECYCLE as c_int,
            Some(generic),
            state.cast::<c_void>(),
            Some(lifecycle_free),
        )
    };
    if id < 0 {
        let err = VirtError::last_error();
        // libvirt does not call the free callback when registration fails.
        // SAFETY: libvirt did not keep the pointer.
        drop(unsafe { Box::from_raw(state) });
        return Err(err);
    }
    Ok(LifecycleRegistration {
        conn: conn.clone(),
        id,
    })
}

impl Drop for LifecycleRegistration {
    /// Wraps <https://libvirt.org/html/libvirt-libvirt-domain.html#virConnectDomainEventDeregisterAny>;
    /// libvirt then releases the callback state through `lifecycle_free`.
    fn drop(&mut self) {
        // SAFETY: `self.conn` is still open (we hold a reference) and `id` came from it.
        let rc = unsafe { sys::virConnectDomainEventDeregisterAny(self.conn.as_ptr(), self.id) };
        if rc < 0 {
            // A connection that broke has already dropped its callbacks (and freed their state).
            tracing::debug!(
                "deregistering lifecycle callback {}: {}",
                self.id,
                VirtError::last_error().message()
            );
        }
    }
}

unsafe extern "C" fn wake_once(timer: c_int, _opaque: *mut c_void) {
    // SAFETY: `timer` is this timeout's own id; libvirt allows removing a timeout from its own
    // callback (it is freed at the end of the loop iteration).
    unsafe { sys::virEventRemoveTimeout(timer) };
}

/// Make the default event loop run one iteration now: a timeout due at once, which removes
/// itself when it fires. Adding it interrupts a loop waiting in `poll`.
///
/// Wraps <https://libvirt.org/html/libvirt-libvirt-event.html#virEventAddTimeout> (and
/// <https://libvirt.org/html/libvirt-libvirt-event.html#virEventRemoveTimeout> in the callback).
pub(crate) fn wake_event_loop() -> Result<(), VirtError> {
    // SAFETY: the callback touches no state (null opaque, no free callback needed).
    let id = unsafe { sys::virEventAddTimeout(0, Some(wake_once), ptr::null_mut(), None) };
    if id < 0 {
        Err(VirtError::last_error())
    } else {
        Ok(())
    }
}

/// Abort the domain's current job (a migration, for instance); the job's own call then fails.
///
/// Wraps <https://libvirt.org/html/libvirt-libvirt-domain.html#virDomainAbortJob>.
pub(crate) fn abort_job(dom: &Domain) -> Result<(), VirtError> {
    // SAFETY: `dom` is a live domain handle.
    let rc = unsafe { sys::virDomainAbortJob(dom.as_ptr()) };
    if rc < 0 {
        Err(VirtError::last_error())
    } else {
        Ok(())
    }
}

/// One reading of a domain job's statistics (the fields Twofold uses).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct JobStats {
    /// `virDomainJobType`: 0 none, 1 bounded, 2 unbounded, 3 completed, 4 failed, 5 cancelled.
    pub job_type: i32,
    pub operation: Option<i32>,
    pub time_elapsed_ms: Option<u64>,
    pub time_remaining_ms: Option<u64>,
    pub downtime_ms: Option<u64>,
    pub setup_time_ms: Option<u64>,
    pub data_total: Option<u64>,
    pub data_processed: Option<u64>,
    pub data_remaining: Option<u64>,
    pub memory_total: Option<u64>,
    pub memory_processed: Option<u64>,
    pub memory_remaining: Option<u64>,
    pub memory_bps: Option<u64>,
    pub memory_dirty_rate: Option<u64>,
    pub memory_iteration: Option<u64>,
    pub disk_total: Option<u64>,
    pub disk_processed: Option<u64>,
    pub error_message: Option<String>,
}

pub(crate) const JOB_NONE: i32 = sys::VIR_DOMAIN_JOB_NONE as i32;
pub(crate) const JOB_COMPLETED: i32 = sys::VIR_DOMAIN_JOB_COMPLETED as i32;

/// Statistics of the domain's current job, or with `completed` of its last completed job
/// (kept for later readers, `VIR_DOMAIN_JOB_STATS_KEEP_COMPLETED`).
///
/// Wraps <https://libvirt.org/html/libvirt-libvirt-domain.html#virDomainGetJobStats>, read with
/// <https://libvirt.org/html/libvirt-libvirt-common.html#virTypedParamsGetULLong> and freed with
/// <https://libvirt.org/html/libvirt-libvirt-common.html#virTypedParamsFree>.
pub(crate) fn job_stats(dom: &Domain, completed: bool) -> Result<JobStats, VirtError> {
    let flags = if completed {
        sys::VIR_DOMAIN_JOB_STATS_COMPLETED | sys::VIR_DOMAIN_JOB_STATS_KEEP_COMPLETED
    } else {
        0
    };
    let mut job_type: c_int = 0;
    let mut params: sys::virTypedParameterPtr = ptr::null_mut();
    let mut nparams: c_int = 0;
    // SAFETY: `dom` is live; libvirt fills the out-pointers and allocates `params`.
    let rc = unsafe {
        sys::virDomainGetJobStats(
            dom.as_ptr(),
            &mut job_type,
            &mut params,
            &mut nparams,
            flags,
        )
    };
    if rc < 0 {
        return Err(VirtError::last_error());
    }
    let mut stats = JobStats {
        job_type,
        ..JobStats::default()
    };
    if !params.is_null() && nparams > 0 {
        let ull = |name: &CStr| -> Option<u64> {
            let mut v: c_ulonglong = 0;
            // SAFETY: `params`/`nparams` describe the array libvirt returned; `name` is
            // NUL-terminated. Returns 1 when found with the right type.
            let found =
                unsafe { sys::virTypedParamsGetULLong(params, nparams, name.as_ptr(), &mut v) };
            (found == 1).then_some(v)
        };
        stats.time_elapsed_ms = ull(sys::VIR_DOMAIN_JOB_TIME_ELAPSED);
        stats.time_remaining_ms = ull(sys::VIR_DOMAIN_JOB_TIME_REMAINING);
        stats.downtime_ms = ull(sys::VIR_DOMAIN_JOB_DOWNTIME);
        stats.setup_time_ms = ull(sys::VIR_DOMAIN_JOB_SETUP_TIME);
        stats.data_total = ull(sys::VIR_DOMAIN_JOB_DATA_TOTAL);
        stats.data_processed = ull(sys::VIR_DOMAIN_JOB_DATA_PROCESSED);
        stats.data_remaining = ull(sys::VIR_DOMAIN_JOB_DATA_REMAINING);
        stats.memory_total = ull(sys::VIR_DOMAIN_JOB_MEMORY_TOTAL);
        stats.memory_processed = ull(sys::VIR_DOMAIN_JOB_MEMORY_PROCESSED);
        stats.memory_remaining = ull(sys::VIR_DOMAIN_JOB_MEMORY_REMAINING);
        stats.memory_bps = ull(sys::VIR_DOMAIN_JOB_MEMORY_BPS);
        stats.memory_dirty_rate = ull(sys::VIR_DOMAIN_JOB_MEMORY_DIRTY_RATE);
        stats.memory_iteration = ull(sys::VIR_DOMAIN_JOB_MEMORY_ITERATION);
        stats.disk_total = ull(sys::VIR_DOMAIN_JOB_DISK_TOTAL);
        stats.disk_processed = ull(sys::VIR_DOMAIN_JOB_DISK_PROCESSED);

        let mut op: c_int = 0;
        // SAFETY: as above; returns 1 when found.
        let found = unsafe {
            sys::virTypedParamsGetInt(
                params,
                nparams,
                sys::VIR_DOMAIN_JOB_OPERATION.as_ptr(),
                &mut op,
            )
        };
        stats.operation = (found == 1).then_some(op);

        let mut msg: *const std::ffi::c_char = ptr::null();
        // SAFETY: as above; the string stays owned by `params` until they are freed below.
        let found = unsafe {
            sys::virTypedParamsGetString(
                params,
                nparams,
                sys::VIR_DOMAIN_JOB_ERRMSG.as_ptr(),
                &mut msg,
            )
        };
        if found == 1 && !msg.is_null() {
            // SAFETY: NUL-terminated string inside `params`, copied before the free.
            stats.error_message = Some(
                unsafe { CStr::from_ptr(msg) }
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
    // SAFETY: frees the array (and its strings) libvirt allocated; null/0 is allowed.
    unsafe { sys::virTypedParamsFree(params, nparams) };
    Ok(stats)
}
