/** The defaults the apiserver fills in on every write (the defaults.go of each API group in k8s.io/kubernetes). */
type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function obj(parent: Obj, key: string): Obj {
  if (!isObj(parent[key])) parent[key] = {};
  return parent[key] as Obj;
}

function podSpecDefaults(spec: Obj): void {
  spec.restartPolicy ??= 'Always';
  spec.terminationGracePeriodSeconds ??= 30;
  spec.dnsPolicy ??= 'ClusterFirst';
  spec.securityContext ??= {};
  spec.schedulerName ??= 'default-scheduler';
  for (const list of ['containers', 'initContainers']) {
    if (!Array.isArray(spec[list])) continue;
    for (const c of spec[list] as unknown[]) {
      if (!isObj(c)) continue;
      c.terminationMessagePath ??= '/dev/termination-log';
      c.terminationMessagePolicy ??= 'File';
      c.resources ??= {};
      if (typeof c.image === 'string')
        c.imagePullPolicy ??=
          /:[^/]+$/.test(c.image) && !c.image.endsWith(':latest') ? 'IfNotPresent' : 'Always';
      if (Array.isArray(c.ports)) for (const p of c.ports) if (isObj(p)) p.protocol ??= 'TCP';
    }
  }
}

function templateDefaults(template: unknown): void {
  if (!isObj(template)) return;
  if (isObj(template.spec)) podSpecDefaults(template.spec);
}

let nextIp = 10;

export function applyDefaults(kind: string, o: Obj): void {
  switch (kind) {
    case 'Deployment': {
      const spec = obj(o, 'spec');
      spec.replicas ??= 1;
      spec.revisionHistoryLimit ??= 10;
      spec.progressDeadlineSeconds ??= 600;
      const strategy = obj(spec, 'strategy');
      strategy.type ??= 'RollingUpdate';
      if (strategy.type === 'RollingUpdate') {
        const ru = obj(strategy, 'rollingUpdate');
        ru.maxSurge ??= '25%';
        ru.maxUnavailable ??= '25%';
      }
      templateDefaults(spec.template);
      return;
    }
    case 'CronJob': {
      const spec = obj(o, 'spec');
      spec.concurrencyPolicy ??= 'Allow';
      spec.suspend ??= false;
      spec.successfulJobsHistoryLimit ??= 3;
      spec.failedJobsHistoryLimit ??= 1;
      const jt = obj(spec, 'jobTemplate');
      templateDefaults(obj(jt, 'spec').template);
      return;
    }
    case 'Pod':
      podSpecDefaults(obj(o, 'spec'));
      if (!isObj(o.status)) o.status = { phase: 'Pending', qosClass: 'BestEffort' };
      return;
    case 'Service': {
      const spec = obj(o, 'spec');
      spec.type ??= 'ClusterIP';
      spec.sessionAffinity ??= 'None';
      if (spec.type !== 'ExternalName') {
        if (spec.clusterIP === undefined || spec.clusterIP === '') {
          spec.clusterIP = `10.96.${Math.floor(nextIp / 250)}.${(nextIp % 250) + 1}`;
          nextIp += 1;
        }
        spec.clusterIPs ??= [spec.clusterIP];
        spec.ipFamilies ??= ['IPv4'];
        spec.ipFamilyPolicy ??= 'SingleStack';
        spec.internalTrafficPolicy ??= 'Cluster';
      }
      if (Array.isArray(spec.ports))
        for (const p of spec.ports)
          if (isObj(p)) {
            p.protocol ??= 'TCP';
            p.targetPort ??= p.port;
          }
      if (!isObj(o.status)) o.status = { loadBalancer: {} };
      return;
    }
    case 'Secret': {
      o.type ??= 'Opaque';
      if (isObj(o.stringData)) {
        const data = obj(o, 'data');
        for (const [k, v] of Object.entries(o.stringData))
          data[k] = Buffer.from(String(v)).toString('base64');
        delete o.stringData;
      }
      return;
    }
    case 'PersistentVolumeClaim': {
      const spec = obj(o, 'spec');
      spec.volumeMode ??= 'Filesystem';
      spec.storageClassName ??= 'standard';
      const requests =
        isObj(spec.resources) && isObj(spec.resources.requests) ? spec.resources.requests : {};
      o.status = {
        phase: 'Bound',
        accessModes: spec.accessModes,
        capacity: { storage: requests.storage },
      };
      spec.volumeName ??= `pvc-${String((o.metadata as Obj).uid ?? '')}`;
      return;
    }
    case 'Namespace': {
      const meta = obj(o, 'metadata');
      obj(meta, 'labels')['kubernetes.io/metadata.name'] = meta.name;
      obj(o, 'spec').finalizers ??= ['kubernetes'];
      if (!isObj(o.status) || !o.status.phase) o.status = { phase: 'Active' };
      return;
    }
    default:
      return;
  }
}
