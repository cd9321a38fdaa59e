"""A throw-away one-node SLURM cluster (munge, slurmctld, slurmd) and PostgreSQL server for the cluster tests.

Everything lives in one directory and listens on localhost: config files written here, daemons started in the
foreground of their own process, stopped with SIGTERM at the end. The binaries come from Debian's `slurm-wlm`,
`munge` and `postgresql` packages (`.ci/run` installs them). Process tracking and task plugins that need no
cgroups (`proctrack/linuxproc`, `task/none`), so it also runs in a container.
"""
from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

SLURM_BINARIES = ("munged", "slurmctld", "slurmd", "slurmdbd", "sbatch", "mariadbd")
POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")


def missing_binaries() -> list[str]:
    """The service binaries this machine lacks (empty: the cluster lane can run)."""
    missing = [b for b in SLURM_BINARIES if not (shutil.which(b) or Path("/usr/sbin", b).exists())]
    return missing + [f"{POSTGRES_BIN}/{b}" for b in ("initdb", "postgres") if not (POSTGRES_BIN / b).exists()]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def binary(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


def wait_for(check, what: str, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.time() + timeout
    while time.time() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not come up within {timeout:.0f} s")


@dataclass
class Services:
    """The running daemons and the environment a client (sbatch, squeue, psycopg2) needs to reach them."""

    root: Path
    env: dict[str, str] = field(default_factory=dict)
    procs: list[subprocess.Popen] = field(default_factory=list)
    postgres_url: str = ""
    cleanup: list[Path] = field(default_factory=list)

    def start(self, name: str, cmd: list[str], user: str | None = None) -> subprocess.Popen:
        log = open(self.root / f"{name}.out", "w")
        if user:
            cmd = ["runuser", "-u", user, "--", *cmd]
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **self.env},
                                start_new_session=True)
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        """SIGTERM each daemon (last started first), SIGKILL the ones still there after 10 s."""
        if "SLURM_CONF" in self.env:
            try:  # jobs still there would outlive slurmd
                self.run("scancel", "--full", f"--user={pwd.getpwuid(os.geteuid()).pw_name}")
            except subprocess.TimeoutExpired:
                pass
        for proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        for path in self.cleanup:
            shutil.rmtree(path, ignore_errors=True)

    def run(self, *cmd: str, timeout: float = 20) -> subprocess.CompletedProcess:
        return subprocess.run(cmd, env={**os.environ, **self.env}, capture_output=True, text=True, timeout=timeout)


def start_munge(s: Services) -> None:
    key, sock = s.root / "munge.key", s.root / "munge.socket"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    s.start("munged", [binary("munged"), "--foreground", "--force", f"--key-file={key}", f"--socket={sock}",
                       f"--pid-file={s.root / 'munged.pid'}", f"--log-file={s.root / 'munged.log'}",
                       f"--seed-file={s.root / 'munged.seed'}"])
    wait_for(sock.exists, "munged")


SLURM_CONF = """\
ClusterName=csc8607
SlurmctldHost={host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
AuthType=auth/munge
CredType=cred/munge
# cred_expire: also how long a requeued job waits before it starts again (default 120 s)
AuthInfo=socket={root}/munge.socket,cred_expire=5
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort={dbd_port}
AccountingStoragePass={root}/munge.socket
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
MpiDefault=none
ReturnToService=2
KillWait=5
MessageTimeout=30
InactiveLimit=0
MinJobAge=300
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={mem_mb} State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


SLURMDBD_CONF = """\
AuthType=auth/munge
AuthInfo=socket={root}/munge.socket
DbdHost=localhost
DbdPort={dbd_port}
SlurmUser=root
PidFile={root}/slurmdbd.pid
LogFile={root}/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort={db_port}
StorageUser=root
StorageLoc=slurm_acct_db
"""


def start_accounting(s: Services) -> int:
    """MariaDB (a throw-away datadir) and slurmdbd: SLURM's accounting, which `sacct` (and so submitit, to see
    a job that ended without a result, e.g. cancelled) reads. Returns slurmdbd's port."""
    data, db_port, dbd_port = s.root / "mysql", free_port(), free_port()
    subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={data}", "--user=root",
                    "--auth-root-authentication-method=normal"], check=True, capture_output=True)
    s.start("mariadb", [binary("mariadbd"), "--no-defaults", f"--datadir={data}", "--user=root",
                        f"--socket={s.root / 'mysql.sock'}", f"--port={db_port}", "--bind-address=127.0.0.1",
                        "--skip-grant-tables", "--innodb-buffer-pool-size=16M"])
    wait_for(lambda: subprocess.run(["bash", "-c", f"echo > /dev/tcp/127.0.0.1/{db_port}"],
                                    capture_output=True).returncode == 0, "mariadb")
    conf = s.root / "slurmdbd.conf"
    conf.write_text(SLURMDBD_CONF.format(root=s.root, dbd_port=dbd_port, db_port=db_port))
    conf.chmod(0o600)
    s.start("slurmdbd", [binary("slurmdbd"), "-D"])  # reads slurmdbd.conf next to $SLURM_CONF
    wait_for(lambda: subprocess.run(["bash", "-c", f"echo > /dev/tcp/127.0.0.1/{dbd_port}"],
                                    capture_output=True).returncode == 0, "slurmdbd")
    return dbd_port


def start_slurm(s: Services) -> None:
    """slurmdbd, slurmctld and slurmd for one node holding this machine's CPUs and (most of) its memory."""
    conf = s.root / "slurm.conf"
    s.env["SLURM_CONF"] = str(conf)
    dbd_port = start_accounting(s)
    host = socket.gethostname().split(".")[0]
    mem_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20 * 3 // 4
    (s.root / "state").mkdir()
    (s.root / "spool").mkdir()
    conf.write_text(SLURM_CONF.format(host=host, root=s.root, ctld_port=free_port(), d_port=free_port(),
                                      cpus=os.cpu_count(), mem_mb=mem_mb,
                                      dbd_port=dbd_port))
    s.start("slurmctld", [binary("slurmctld"), "-D", "-i", "-f", str(conf)])
    wait_for(lambda: s.run("sinfo", "-h").returncode == 0, "slurmctld")
    s.start("slurmd", [binary("slurmd"), "-D", "-f", str(conf), "-N", host])
    wait_for(lambda: s.run("sinfo", "-h", "-o", "%t").stdout.strip() in ("idle", "mix", "alloc"), "slurmd")


def start_postgres(s: Services) -> None:
    """A fresh PostgreSQL cluster on a local port, owned by the `postgres` user (initdb refuses root)."""
    port = free_port()
    data = Path(tempfile.mkdtemp(prefix="csc8607-pgdata-"))  # outside pytest's 0700 tmp dirs, which postgres
    s.cleanup.append(data)                                   # (the user initdb runs as, as root) cannot enter
    user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    if os.geteuid() == 0:
        shutil.chown(data, user)
    run_as = ["runuser", "-u", user, "--"] if os.geteuid() == 0 else []
    subprocess.run([*run_as, str(POSTGRES_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "optuna"],
                   check=True, capture_output=True)
    s.start("postgres", [str(POSTGRES_BIN / "postgres"), "-D", str(data), "-p", str(port), "-k", str(data),
                         "-h", "127.0.0.1"], user=user if os.geteuid() == 0 else None)
    s.postgres_url = f"postgresql://optuna@127.0.0.1:{port}/postgres"
    wait_for(lambda: subprocess.run(["bash", "-c", f"echo > /dev/tcp/127.0.0.1/{port}"],
                                    capture_output=True).returncode == 0, "postgres")
