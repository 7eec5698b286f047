// createNode: a running node — TCP server and peer pool, the peer file watched, health checks,
// the topology service and the HTTP API. stop() closes links cleanly (peers see a disconnect).
import { networkInterfaces } from "node:os";
import { createApp } from "../api/app.ts";
import { startApiServer, type ApiServer } from "../api/server.ts";
import { loadClusterKey, type ClusterKey } from "../config/cluster-key.ts";
import { loadPeerFile, peersOf, selfEntry, type PeerFile } from "../config/peer-file.ts";
import { splitSelfAddressed } from "../config/self-address.ts";
import { watchPeerFile } from "../config/watch-peer-file.ts";
import { DEFAULT_PORT, type NodeOptions } from "../config/node-options.ts";
import type { InferenceService } from "../cluster/types.ts";
import { NodeError } from "../errors.ts";
import { logger } from "../log.ts";
import { resolveAdmittedAddresses } from "../net/admission.ts";
import { startHealthChecks } from "../net/health.ts";
import { PeerPool } from "../net/peer-pool.ts";
import { listenTcp, type TcpServer } from "../net/sockets.ts";
import { createTopologyService } from "../net/topology-service.ts";
import { detectCapabilities } from "../topology/capabilities.ts";
import { topologyToJson } from "../topology/graph.ts";
import type { DeviceCapabilities } from "../topology/types.ts";
import { PROTOCOL_VERSION, VERSION } from "../version.ts";
import { nodeDebug } from "./debug.ts";
import { createNodeServices } from "./services.ts";
import type { CreateNodeHooks, ExoNode, ExoNodeCore, NodeServices } from "./types.ts";

const log = logger("node");

/** Every address of this machine's network interfaces (a peer entry may name any of them). */
function machineAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address));
}

/** The inference service, except that a draining node refuses new generations (503, the client tries another node). */
function refuseWhileDraining(inference: InferenceService, nodeId: string, draining: () => boolean): InferenceService {
  return {
    listModels: () => inference.listModels(),
    async *generate(req, signal) {
      if (draining())
        throw new NodeError(
          "E_PEER_DOWN",
          `node ${nodeId} is draining before it exits: send the request to another node`,
        );
      yield* inference.generate(req, signal);
    },
  };
}

/** Said once at start (and again if a reload drops the key): what running without a key means. */
const KEYLESS_WARNING =
  "no cluster key: links are neither authenticated nor encrypted, and peers are admitted by address only; run `exo keygen` and put `cluster_key: KEY` in the peer file of every node";

/** The key in force for these options and peer file. @throws NodeError E_CONFIG_READ / E_CONFIG_INVALID */
function clusterKeyOf(options: Readonly<NodeOptions>, file: PeerFile | undefined): Promise<ClusterKey | undefined> {
  return loadClusterKey({
    keyFile: options.clusterKeyFile,
    env: options.clusterKey,
    peerFile: file && { key: file.clusterKey, fileName: file.fileName },
  });
}

/**
 * Start a node. @throws NodeError E_CONFIG_READ / E_CONFIG_INVALID for a bad peer file or an address
 * that cannot be bound.
 */
export async function createNode(options: Readonly<NodeOptions>, hooks: CreateNodeHooks = {}): Promise<ExoNode> {
  const detected = hooks.capabilities ?? (await detectCapabilities());
  const capabilities = options.memoryMb === undefined ? detected : { ...detected, memory: options.memoryMb };
  let peerFile: PeerFile | undefined = options.configPath ? await loadPeerFile(options.configPath) : undefined;
  const port = options.port ?? (peerFile && selfEntry(peerFile, options.nodeId)?.port) ?? DEFAULT_PORT;
  const clusterKey = await clusterKeyOf(options, peerFile);

  let boundPort = 0;
  const pool = new PeerPool({
    selfId: options.nodeId,
    hello: () => ({
      nodeId: options.nodeId,
      protocol: PROTOCOL_VERSION,
      version: VERSION,
      capabilities,
      port: boundPort,
    }),
    requestTimeoutMs: options.requestTimeoutMs,
    healthTimeoutMs: options.healthTimeoutMs,
    dialTimeoutMs: options.dialTimeoutMs,
    handshakeTimeoutMs: options.handshakeTimeoutMs,
    maxFrameBytes: options.maxFrameBytes,
    backoffMinMs: Math.min(200, options.healthIntervalMs),
    backoffMaxMs: Math.max(options.healthIntervalMs, 200),
    clusterKey: clusterKey?.bytes,
  });
  const server: TcpServer = listenTcp(options.host, port, (socket) => pool.accept(socket));
  boundPort = server.port;
  log.info(`node ${options.nodeId} listening for peers on ${options.host}:${boundPort}`);

  const configuredCapabilities = (id: string) => peerFile?.peers.get(id)?.deviceCapabilities;
  const ownAddress = { port: boundPort, addresses: [options.host, ...machineAddresses()] };
  const warnedSelf = new Set<string>();
  // Every entry (this node's too: a probe such as exo doctor may run here) says where links may come from.
  const applyPeerFile = async (file: PeerFile | undefined) => {
    const admitted = file ? await resolveAdmittedAddresses(peersOf(file, "")) : undefined;
    peerFile = file;
    pool.setAdmittedAddresses(admitted);
    if (!file) return pool.setPeers(undefined);
    // An entry at this node's own address would only dial ourselves: said once per entry, never dialled.
    const { peers, self } = splitSelfAddressed(peersOf(file, options.nodeId), ownAddress);
    for (const p of self) {
      const key = `${p.nodeId}@${p.address}:${p.port}`;
      if (warnedSelf.has(key)) continue;
      warnedSelf.add(key);
      log.warn(
        `${file.fileName}: peer ${p.nodeId} at ${p.address}:${p.port} is this node's own address (node ${options.nodeId}); not dialling it: fix its address or port`,
      );
    }
    pool.setPeers(peers);
  };
  await applyPeerFile(peerFile);
  let reloads = Promise.resolve();
  let keyed = clusterKey !== undefined;
  const reload = async (file: PeerFile) => {
    try {
      const key = await clusterKeyOf(options, file);
      if (!key && keyed) log.warn(KEYLESS_WARNING);
      keyed = key !== undefined;
      pool.setClusterKey(key?.bytes);
    } catch (err) {
      log.error(`${(err as Error).message} (keeping the cluster key in force)`);
    }
    await applyPeerFile(file);
  };
  const stopWatching = options.configPath
    ? watchPeerFile(
        options.configPath,
        {
          onChange: (file) => {
            log.info(`peer file ${file.fileName} changed: ${file.peers.size} entries`);
            reloads = reloads.then(() => reload(file));
          },
          onError: (err) => log.error(`${err.message} (keeping the last good peer list)`),
        },
        { initial: peerFile },
      )
    : () => {};

  const health = startHealthChecks(pool, options.healthIntervalMs);
  const topology = createTopologyService({
    pool,
    capabilities,
    configuredCapabilities,
    maxDepth: options.topologyMaxDepth,
    timeoutMs: options.healthTimeoutMs,
    refreshIntervalMs: options.healthIntervalMs,
  });

  function capabilitiesOf(id: string): DeviceCapabilities | undefined {
    return id === options.nodeId ? capabilities : (pool.helloOf(id)?.capabilities ?? configuredCapabilities(id));
  }

  const core: ExoNodeCore = {
    nodeId: options.nodeId,
    options,
    transport: pool,
    pool,
    topology,
    capabilities,
    port: boundPort,
    memoryOf: (id) => capabilitiesOf(id)?.memory,
    capabilitiesOf,
  };

  let api: ApiServer | undefined;
  let services: NodeServices | undefined;
  // Set by drain() (SIGTERM): new generations are refused with 503 so clients go to another node.
  let draining = false;
  const stopNetwork = () => {
    stopWatching();
    health.stop();
    topology.stop();
    pool.stop();
    server.stop();
  };
  try {
    services = await (hooks.services ?? createNodeServices)(core);
    const app = createApp({
      nodeId: options.nodeId,
      topology: () => topologyToJson(topology.current()),
      inference: refuseWhileDraining(services.inference, options.nodeId, () => draining),
      cluster: services.inference,
      models: services.models,
      apiKey: options.apiKey,
      debug: nodeDebug(core, services.debugState),
    });
    api = startApiServer(app, { host: options.apiHost, port: options.apiPort });
  } catch (err) {
    await services?.stop();
    stopNetwork();
    throw err;
  }
  log.info(`node ${options.nodeId} serving the API on ${options.apiHost}:${api.port}`);
  // Said once the node is up (a node that cannot bind its ports says only why).
  if (clusterKey) log.info(`links are authenticated and sealed with the cluster key from ${clusterKey.source}`);
  else log.warn(KEYLESS_WARNING);

  let stopping: Promise<void> | undefined;
  const finalApi = api;
  const finalServices = services;
  return {
    ...core,
    apiPort: api.port,
    services,
    async drain() {
      draining = true;
      const running = async () => {
        const live = await finalServices.inference.liveRequests();
        // Requests admitted before the drain and still queued run when a slot frees, within the same bound.
        return live.queued + live.coordinating + live.stages;
      };
      let n = await running();
      if (n === 0) return;
      log.info(
        `node ${options.nodeId} draining: ${n} request(s) running, new ones refused, waiting up to ${options.drainMs} ms`,
      );
      const deadline = Date.now() + options.drainMs;
      // Request counts live in the cluster service and the stages; a short poll keeps this file out of them.
      while (n > 0 && Date.now() < deadline) {
        await Bun.sleep(50);
        n = await running();
      }
      log.info(
        n === 0
          ? `node ${options.nodeId} drained: every running request finished`
          : `node ${options.nodeId} drain bound reached: ${n} request(s) still running fail over onto the other nodes`,
      );
    },
    stop: () =>
      (stopping ??= (async () => {
        log.info(`node ${options.nodeId} shutting down`);
        await finalApi.stop();
        await finalServices.stop();
        stopNetwork();
      })()),
  };
}
