// createNode: a running node — TCP server and peer pool, the peer file watched, health checks,
// the topology service and the HTTP API. stop() closes links cleanly (peers see a disconnect).
import { createApp } from "../api/app.ts";
import { startApiServer, type ApiServer } from "../api/server.ts";
import { loadPeerFile, peersOf, selfEntry, type PeerFile } from "../config/peer-file.ts";
import { watchPeerFile } from "../config/watch-peer-file.ts";
import { DEFAULT_PORT, type NodeOptions } from "../config/node-options.ts";
import { logger } from "../log.ts";
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

/**
 * Start a node. @throws NodeError E_CONFIG_READ / E_CONFIG_INVALID for a bad peer file or an address
 * that cannot be bound.
 */
export async function createNode(options: Readonly<NodeOptions>, hooks: CreateNodeHooks = {}): Promise<ExoNode> {
  const detected = hooks.capabilities ?? (await detectCapabilities());
  const capabilities = options.memoryMb === undefined ? detected : { ...detected, memory: options.memoryMb };
  let peerFile: PeerFile | undefined = options.configPath ? await loadPeerFile(options.configPath) : undefined;
  const port = options.port ?? (peerFile && selfEntry(peerFile, options.nodeId)?.port) ?? DEFAULT_PORT;

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
  });
  const server: TcpServer = listenTcp(options.host, port, (socket) => pool.accept(socket));
  boundPort = server.port;
  log.info(`node ${options.nodeId} listening for peers on ${options.host}:${boundPort}`);

  const configuredCapabilities = (id: string) => peerFile?.peers.get(id)?.deviceCapabilities;
  const applyPeerFile = (file: PeerFile | undefined) => {
    peerFile = file;
    pool.setPeers(file ? peersOf(file, options.nodeId) : undefined);
  };
  applyPeerFile(peerFile);
  const stopWatching = options.configPath
    ? watchPeerFile(
        options.configPath,
        {
          onChange: (file) => {
            log.info(`peer file ${file.fileName} changed: ${file.peers.size} entries`);
            applyPeerFile(file);
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
      inference: services.inference,
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

  let stopping: Promise<void> | undefined;
  const finalApi = api;
  const finalServices = services;
  return {
    ...core,
    apiPort: api.port,
    services,
    stop: () =>
      (stopping ??= (async () => {
        log.info(`node ${options.nodeId} shutting down`);
        await finalApi.stop();
        await finalServices.stop();
        stopNetwork();
      })()),
  };
}
