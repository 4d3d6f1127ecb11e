//! One VRRP instance (virtual router): set up its addresses, socket, checks and state
//! machine, then run it as its own task ([`task`]) until stopped. The daemon holds an
//! [`InstanceHandle`] per instance: a command queue in, a [`View`] out.

mod task;
mod timers;
pub mod view;

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{info, info_span, Instrument};

use crate::addresses::{AddressError, AddressManager, VirtualAddress};
use crate::config::{self, ChecksumMode as ConfigChecksum};
use crate::fsm::{self, Fsm};
use crate::metrics::VrrpMetrics;
use crate::notify::Notifier;
use crate::packet::{AddressFamily, ChecksumMode, Expectations, Version};
use crate::transport::{AdvertTemplate, Transport, TransportError};
use task::Task;
pub use view::View;

/// Why an instance could not start.
#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    #[error("instance {instance}: {source}")]
    Addresses {
        instance: String,
        source: AddressError,
    },
    #[error("instance {instance}: {source}")]
    Transport {
        instance: String,
        source: TransportError,
    },
    #[error("instance {instance}: {source}")]
    Fsm {
        instance: String,
        source: fsm::ConfigError,
    },
    #[error("instance {instance}: invalid virtual address {address:?}")]
    Address { instance: String, address: String },
}

/// What the daemon (control commands, sync groups, stop) asks of an instance.
#[derive(Debug)]
pub enum Command {
    /// Override the configured priority (`None`: back to the configured one).
    Priority(Option<u8>),
    /// Force (or release) Backup.
    Maintenance(bool),
    /// A sync group partner entered (or left) Fault.
    SyncFault(bool),
    /// Shut down: priority 0, addresses removed, task ends.
    Stop,
}

/// An instance's own faults appeared or cleared, as told to the sync-group coordinator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultEvent {
    pub instance: String,
    pub faulted: bool,
}

/// Everything an instance task shares with the daemon.
#[derive(Clone)]
pub struct Shared {
    pub metrics: VrrpMetrics,
    pub notifier: Notifier,
    pub faults: mpsc::UnboundedSender<FaultEvent>,
}

/// The daemon's side of a running instance.
pub struct InstanceHandle {
    pub config: config::Instance,
    pub view: Arc<Mutex<View>>,
    commands: mpsc::Sender<(Command, oneshot::Sender<()>)>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl InstanceHandle {
    /// Sends a command and waits until the instance has applied it.
    pub async fn command(&self, command: Command) -> bool {
        let (done, applied) = oneshot::channel();
        if self.commands.send((command, done)).await.is_err() {
            return false;
        }
        applied.await.is_ok()
    }

    /// Stops the instance (priority 0, addresses removed) and waits for its task.
    pub async fn stop(&self) {
        self.command(Command::Stop).await;
        let task = self.task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    pub fn view(&self) -> View {
        match self.view.lock() {
            Ok(v) => v.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

/// Sets the instance up and starts its task.
pub fn start(config: config::Instance, shared: Shared) -> Result<InstanceHandle, InstanceError> {
    let name = config.name.clone();
    let vips = config
        .virtual_addresses
        .iter()
        .map(|text| {
            VirtualAddress::parse(text).ok_or_else(|| InstanceError::Address {
                instance: name.clone(),
                address: text.clone(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let ipv6 = vips.first().is_some_and(|v| v.address.is_ipv6());
    let addresses_error = |source| InstanceError::Addresses {
        instance: name.clone(),
        source,
    };
    let mut addresses =
        AddressManager::new(&config.interface, vips.clone()).map_err(addresses_error)?;
    let leftovers = addresses.remove_leftovers().map_err(addresses_error)?;
    if leftovers > 0 {
        info!(instance = %name, leftovers, "removed virtual addresses left by a previous run");
    }
    let primary = addresses.primary_address(ipv6).map_err(addresses_error)?;
    let version = if config.version == 2 {
        Version::V2
    } else {
        Version::V3
    };
    let template = AdvertTemplate {
        version,
        vrid: config.vrid,
        interval: config.advert_interval.get(),
        addresses: vips.iter().map(|v| v.address).collect(),
        checksum_mode: match config.v3_ipv4_checksum {
            ConfigChecksum::WithPseudoHeader => ChecksumMode::WithPseudoHeader,
            ConfigChecksum::WithoutPseudoHeader => ChecksumMode::WithoutPseudoHeader,
        },
    };
    let transport = Transport::open(
        &config.interface,
        addresses.index(),
        primary,
        config.unicast_peers.as_deref(),
        template,
    )
    .map_err(|source| InstanceError::Transport {
        instance: name.clone(),
        source,
    })?;
    let mut fsm_config = fsm::Config::new(
        config.vrid,
        config.priority,
        config.advert_interval.get(),
        primary,
    );
    fsm_config.preempt = config.preempt;
    fsm_config.preempt_delay = config.preempt_delay.get();
    fsm_config.version = version;
    let machine = Fsm::new(fsm_config).map_err(|source| InstanceError::Fsm {
        instance: name.clone(),
        source,
    })?;
    let mut expect = Expectations::new(
        version,
        config.vrid,
        if ipv6 {
            AddressFamily::Ipv6
        } else {
            AddressFamily::Ipv4
        },
        config.advert_interval.get(),
    );
    expect.own_addresses = own_addresses(&mut addresses, primary);
    expect.unicast_peers = config.unicast_peers.clone().unwrap_or_default();

    let mut view = View::new(&config);
    view.primary_address = Some(primary);
    let view = Arc::new(Mutex::new(view));
    let (commands, command_rx) = mpsc::channel(16);
    shared.metrics.init_instance(&name);
    let span =
        info_span!("instance", name = %name, vrid = config.vrid, interface = %config.interface);
    let task = Task::new(
        config.clone(),
        machine,
        transport,
        addresses,
        expect,
        command_rx,
        view.clone(),
        shared,
    );
    let task = tokio::spawn(task.run().instrument(span));
    Ok(InstanceHandle {
        config,
        view,
        commands,
        task: Mutex::new(Some(task)),
    })
}

/// Our addresses on the interface: packets from them are our own.
fn own_addresses(addresses: &mut AddressManager, primary: IpAddr) -> Vec<IpAddr> {
    let vips: Vec<IpAddr> = addresses.vips().iter().map(|v| v.address).collect();
    let mut own: Vec<IpAddr> = addresses
        .interface_addresses()
        .unwrap_or_default()
        .into_iter()
        .map(|a| a.address)
        .filter(|a| !vips.contains(a))
        .collect();
    if !own.contains(&primary) {
        own.push(primary);
    }
    own
}
