//! Storage pools and volumes on a host: where Twofold makes VM disks (the `twofold` pool over the
//! replicated store) and how files from this computer reach it (libvirt's volume upload stream,
//! over the same SSH connection as every other libvirt call).

use std::io::Read;

use serde::Serialize;
use virt::error::ErrorNumber;
use virt::storage_pool::StoragePool;
use virt::storage_vol::StorageVol;
use virt::stream::Stream;

use super::xml_escape;
use super::HostConn;
use crate::error::{Error, Result};
use crate::progress::{Progress, ProgressEvent};

/// Upload chunk: large enough for throughput over SSH, small enough for smooth progress.
const CHUNK: usize = 1 << 20;

/// A storage pool as libvirt reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PoolInfo {
    pub name: String,
    /// The pool's directory on the host.
    pub path: String,
    pub active: bool,
    pub capacity_bytes: u64,
    pub available_bytes: u64,
}

impl HostConn {
    /// The pool `name`, refreshed (so volumes another host made are seen), or `None`.
    pub fn pool_blocking(&self, name: &str) -> Result<Option<PoolInfo>> {
        let pool = match self.connect().lookup_storage_pool_by_name(name) {
            Ok(p) => p,
            Err(e) if e.code().is(ErrorNumber::NoStoragePool) => return Ok(None),
            Err(e) => {
                return Err(self.libvirt_error(format!("looking up storage pool '{name}'"), e))
            }
        };
        let active = pool
            .is_active()
            .map_err(|e| self.libvirt_error(format!("reading storage pool '{name}'"), e))?;
        if active {
            pool.refresh(0)
                .map_err(|e| self.libvirt_error(format!("refreshing storage pool '{name}'"), e))?;
        }
        let info = pool
            .info()
            .map_err(|e| self.libvirt_error(format!("reading storage pool '{name}'"), e))?;
        let xml = pool
            .xml_desc(0)
            .map_err(|e| self.libvirt_error(format!("reading storage pool '{name}'"), e))?;
        Ok(Some(PoolInfo {
            name: name.to_string(),
            path: between(&xml, "<path>", "</path>").unwrap_or_default(),
            active,
            capacity_bytes: info.capacity,
            available_bytes: info.available,
        }))
    }

    /// The path of volume `vol` in pool `pool`, if it exists.
    pub fn volume_path_blocking(&self, pool: &str, vol: &str) -> Result<Option<String>> {
        let p = self.pool(pool)?;
        match p.lookup_storage_vol_by_name(vol) {
            Ok(v) => v
                .path()
                .map(Some)
                .map_err(|e| self.libvirt_error(format!("reading volume '{vol}'"), e)),
            Err(e) if e.code().is(ErrorNumber::NoStorageVolume) => Ok(None),
            Err(e) => Err(self.libvirt_error(format!("looking up volume '{vol}'"), e)),
        }
    }

    /// Create an empty volume (`qcow2` grows as written; `raw` is allocated sparse). Returns its
    /// path.
    pub fn create_volume_blocking(
        &self,
        pool: &str,
        vol: &str,
        format: &str,
        capacity_bytes: u64,
    ) -> Result<String> {
        let p = self.pool(pool)?;
        let v = StorageVol::create_xml(&p, &volume_xml(vol, format, capacity_bytes), 0).map_err(
            |e| self.libvirt_error(format!("creating volume '{vol}' in pool '{pool}'"), e),
        )?;
        v.path()
            .map_err(|e| self.libvirt_error(format!("reading volume '{vol}'"), e))
    }

    /// Create volume `vol` and fill it with `len` bytes from `data` (an image or ISO on this
    /// computer), streamed to the host. A failed upload deletes the half-written volume.
    pub fn upload_volume_blocking(
        &self,
        pool: &str,
        vol: &str,
        format: &str,
        data: &mut dyn Read,
        len: u64,
        progress: &dyn Progress,
    ) -> Result<String> {
        let p = self.pool(pool)?;
        let v = StorageVol::create_xml(&p, &volume_xml(vol, format, len), 0).map_err(|e| {
            self.libvirt_error(format!("creating volume '{vol}' in pool '{pool}'"), e)
        })?;
        let result = self.upload(&v, vol, data, len, progress);
        if let Err(e) = result {
            let _ = v.delete(0);
            return Err(e);
        }
        v.path()
            .map_err(|e| self.libvirt_error(format!("reading volume '{vol}'"), e))
    }

    fn upload(
        &self,
        v: &StorageVol,
        vol: &str,
        data: &mut dyn Read,
        len: u64,
        progress: &dyn Progress,
    ) -> Result<()> {
        let err = |e| self.libvirt_error(format!("uploading to volume '{vol}'"), e);
        let stream = Stream::new(self.connect(), 0).map_err(err)?;
        v.upload(&stream, 0, len, 0).map_err(err)?;
        progress.begin(&format!("uploading {vol}"), Some(len));
        let mut buf = vec![0u8; CHUNK];
        let mut sent = 0u64;
        while sent < len {
            let want = CHUNK.min((len - sent) as usize);
            let n = match data.read(&mut buf[..want]) {
                Ok(0) => {
                    let _ = stream.abort();
                    return Err(Error::InvalidInput(format!(
                        "the file for '{vol}' ended after {sent} of {len} bytes; was it changed while uploading? Nothing was kept"
                    )));
                }
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let _ = stream.abort();
                    return Err(Error::io(format!("reading the file for '{vol}'"), e));
                }
            };
            let mut off = 0;
            while off < n {
                match stream.send(&buf[off..n]) {
                    Ok(k) if k > 0 => off += k as usize,
                    Ok(_) => {
                        let _ = stream.abort();
                        return Err(Error::Libvirt {
                            host: self.host().to_string(),
                            op: format!("uploading to volume '{vol}'"),
                            detail: "the host closed the upload stream".into(),
                        });
                    }
                    Err(e) => {
                        let _ = stream.abort();
                        return Err(err(e));
                    }
                }
            }
            sent += n as u64;
            progress.event(&ProgressEvent::Transferred {
                done_bytes: sent,
                total_bytes: Some(len),
            });
        }
        stream.finish().map_err(err)?;
        progress.finish();
        Ok(())
    }

    /// Delete a volume; a volume that is not there is no error.
    pub fn delete_volume_blocking(&self, pool: &str, vol: &str) -> Result<()> {
        let p = self.pool(pool)?;
        match p.lookup_storage_vol_by_name(vol) {
            Ok(v) => v
                .delete(0)
                .map_err(|e| self.libvirt_error(format!("deleting volume '{vol}'"), e)),
            Err(e) if e.code().is(ErrorNumber::NoStorageVolume) => Ok(()),
            Err(e) => Err(self.libvirt_error(format!("looking up volume '{vol}'"), e)),
        }
    }

    /// Whether the host can run KVM guests (else QEMU emulation only), from its capabilities.
    pub fn supports_kvm_blocking(&self) -> Result<bool> {
        let caps = self
            .connect()
            .capabilities()
            .map_err(|e| self.libvirt_error("reading the host's capabilities", e))?;
        Ok(caps.contains("<domain type='kvm'") || caps.contains("<domain type=\"kvm\""))
    }

    fn pool(&self, name: &str) -> Result<StoragePool> {
        self.connect().lookup_storage_pool_by_name(name).map_err(|e| {
            if e.code().is(ErrorNumber::NoStoragePool) {
                Error::InvalidInput(format!(
                    "{} has no storage pool '{name}'; set the platform up first (twofold setup apply), which creates it on the shared store",
                    self.host()
                ))
            } else {
                self.libvirt_error(format!("looking up storage pool '{name}'"), e)
            }
        })
    }
}

fn volume_xml(name: &str, format: &str, capacity: u64) -> String {
    format!(
        "<volume><name>{}</name><capacity unit='bytes'>{capacity}</capacity>\
         <target><format type='{}'/></target></volume>",
        xml_escape(name),
        xml_escape(format)
    )
}

fn between(s: &str, start: &str, end: &str) -> Option<String> {
    let a = s.find(start)? + start.len();
    let b = s[a..].find(end)? + a;
    Some(s[a..b].trim().to_string())
}
