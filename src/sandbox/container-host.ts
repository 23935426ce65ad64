/**
 * What makes a sandbox host a container host: the container runtime's own
 * configuration files, written into the host's layer. Units stay exactly
 * what production hosts run (`docker run ...` through podman-docker); the
 * settings a nspawn host needs live here, never in unit templates:
 *
 * - storage driver `vfs`: overlay on the host's overlay root needs fuse,
 *   which hosts do not have;
 * - `cgroups = "disabled"`: hosts see a read-only cgroup v1 tree, so the
 *   runtime cannot make cgroups of its own (the container's processes stay
 *   in the unit's cgroup, where systemd stops and kills them);
 * - `netns = "host"`: containers use the host's network (its address on
 *   the bridge); published ports (`-p`) are then ignored, with a warning;
 * - `keyring = false`: nspawn's seccomp filter, which every service in a
 *   host inherits, refuses keyctl, so crun cannot make a session keyring
 *   ("create keyring: Operation not permitted"; from nsenter it worked);
 * - `log_driver = "journald"`: containers' output goes to the host's
 *   journal, where the td-agent sidecar reads it (docs/SIDECARS.md);
 * - the sandbox registry, plain HTTP, declared insecure for its one address
 *   (see registry.ts for why).
 *
 * Pure: file path -> content. Kept apart from the rest of the host layer so
 * it can move into cloud-config user-data (write_files) as it is.
 */

export interface ContainerHostOptions {
  /** host:port of the sandbox registry, e.g. 10.213.0.1:5000 */
  registry: string;
}

export function containerHostFiles(o: ContainerHostOptions): Record<string, string> {
  return {
    '/etc/containers/containers.conf': [
      '# fleetx sandbox host: settings an nspawn host needs (src/sandbox/container-host.ts)',
      '[containers]',
      'cgroups = "disabled"',
      'netns = "host"',
      'keyring = false',
      // the log path td-agent reads (docs/SIDECARS.md): every container's output in the host's journal
      'log_driver = "journald"',
      '',
      '[engine]',
      'cgroup_manager = "cgroupfs"',
      'events_logger = "journald"',
      'runtime = "crun"',
      '',
    ].join('\n'),
    '/etc/containers/storage.conf': [
      '# fleetx sandbox host: overlay needs fuse, which nspawn hosts lack',
      '[storage]',
      'driver = "vfs"',
      'runroot = "/run/containers/storage"',
      'graphroot = "/var/lib/containers/storage"',
      '',
    ].join('\n'),
    '/etc/containers/registries.conf': [
      '# fleetx sandbox host: images come from the sandbox registry only (plain HTTP on the bridge)',
      'unqualified-search-registries = []',
      '',
      '[[registry]]',
      `location = "${o.registry}"`,
      'insecure = true',
      '',
    ].join('\n'),
    // podman-docker's /usr/bin/docker prints a notice on every call unless this exists.
    '/etc/containers/nodocker': '',
  };
}
