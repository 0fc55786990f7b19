/**
 * The Consul Connect part of the job schema (api/consul.go): sidecars, gateways, upstreams and
 * their config entries, reachable from `Service.Connect`. Kept apart from schema-structs.ts only
 * for size; the same Go-to-JSON type mapping applies.
 */
import type { FieldType } from './schema-types.js';

export const consulStructs: Record<string, Record<string, FieldType>> = {
  ConsulConnect: {
    Native: 'bool',
    Gateway: 'ConsulGateway',
    SidecarService: 'ConsulSidecarService',
    SidecarTask: 'SidecarTask',
  },
  ConsulGateway: {
    Proxy: 'ConsulGatewayProxy',
    Ingress: 'ConsulIngressConfigEntry',
    Terminating: 'ConsulTerminatingConfigEntry',
    Mesh: 'ConsulMeshConfigEntry',
  },
  ConsulSidecarService: {
    Tags: { array: 'string' },
    Port: 'string',
    Proxy: 'ConsulProxy',
    DisableDefaultTCPCheck: 'bool',
    Meta: { map: 'string' },
  },
  ConsulGatewayProxy: {
    ConnectTimeout: 'duration',
    EnvoyGatewayBindTaggedAddresses: 'bool',
    EnvoyGatewayBindAddresses: { map: 'ConsulGatewayBindAddress' },
    EnvoyGatewayNoDefaultBind: 'bool',
    EnvoyDNSDiscoveryType: 'string',
    Config: { map: 'any' },
  },
  ConsulIngressConfigEntry: {
    TLS: 'ConsulGatewayTLSConfig',
    Listeners: { array: 'ConsulIngressListener' },
  },
  ConsulTerminatingConfigEntry: {
    Services: { array: 'ConsulLinkedService' },
  },
  ConsulMeshConfigEntry: {},
  ConsulProxy: {
    LocalServiceAddress: 'string',
    LocalServicePort: 'int',
    Expose: 'ConsulExposeConfig',
    ExposeConfig: 'ConsulExposeConfig',
    Upstreams: { array: 'ConsulUpstream' },
    TransparentProxy: 'ConsulTransparentProxy',
    Config: { map: 'any' },
  },
  ConsulGatewayBindAddress: {
    Name: 'string',
    Address: 'string',
    Port: 'int',
  },
  ConsulGatewayTLSConfig: {
    Enabled: 'bool',
    TLSMinVersion: 'string',
    TLSMaxVersion: 'string',
    CipherSuites: { array: 'string' },
    SDS: 'ConsulGatewayTLSSDSConfig',
  },
  ConsulIngressListener: {
    Port: 'int',
    Protocol: 'string',
    Services: { array: 'ConsulIngressService' },
  },
  ConsulLinkedService: {
    Name: 'string',
    CAFile: 'string',
    CertFile: 'string',
    KeyFile: 'string',
    SNI: 'string',
  },
  ConsulExposeConfig: {
    Paths: { array: 'ConsulExposePath' },
    Path: { array: 'ConsulExposePath' },
  },
  ConsulUpstream: {
    DestinationName: 'string',
    DestinationNamespace: 'string',
    DestinationPeer: 'string',
    DestinationPartition: 'string',
    DestinationType: 'string',
    LocalBindPort: 'int',
    Datacenter: 'string',
    LocalBindAddress: 'string',
    LocalBindSocketPath: 'string',
    LocalBindSocketMode: 'string',
    MeshGateway: 'ConsulMeshGateway',
    Config: { map: 'any' },
  },
  ConsulTransparentProxy: {
    UID: 'string',
    OutboundPort: 'uint',
    ExcludeInboundPorts: { array: 'string' },
    ExcludeOutboundPorts: { array: 'uint' },
    ExcludeOutboundCIDRs: { array: 'string' },
    ExcludeUIDs: { array: 'string' },
    NoDNS: 'bool',
  },
  ConsulGatewayTLSSDSConfig: {
    ClusterName: 'string',
    CertResource: 'string',
  },
  ConsulIngressService: {
    Name: 'string',
    Hosts: { array: 'string' },
    TLS: 'ConsulGatewayTLSConfig',
    RequestHeaders: 'ConsulHTTPHeaderModifiers',
    ResponseHeaders: 'ConsulHTTPHeaderModifiers',
    MaxConnections: 'uint',
    MaxPendingRequests: 'uint',
    MaxConcurrentRequests: 'uint',
  },
  ConsulExposePath: {
    Path: 'string',
    Protocol: 'string',
    LocalPathPort: 'int',
    ListenerPort: 'string',
  },
  ConsulMeshGateway: {
    Mode: 'string',
  },
  ConsulHTTPHeaderModifiers: {
    Add: { map: 'string' },
    Set: { map: 'string' },
    Remove: { array: 'string' },
  },
};
