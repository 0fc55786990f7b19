/**
 * What the fake client reports of a task (api.TaskState, api.TaskEvent): the events of a task
 * that starts, and of one that exits 1 until its restart policy gives up, worded as Nomad's
 * TaskEvent.PopulateEventDisplayMessage and client/allocrunner/taskrunner/restarts word them.
 */
import { nowNs } from './store.js';
import { type Job, goDuration } from './validate.js';

/** Why a group's allocation fails: a task whose image contains `crashloop`, sets FAKE_NOMAD_CRASH, or is docker without an image. */
export function crashes(tg: Job): { task: string; driverError?: string } | undefined {
  for (const t of tg.Tasks as Job[]) {
    if (t.Driver === 'docker' && !t.Config?.image) {
      return {
        task: t.Name,
        driverError: 'failed to decode driver config: Missing required argument "image"',
      };
    }
    if (String(t.Config?.image ?? '').includes('crashloop') || t.Env?.FAKE_NOMAD_CRASH)
      return { task: t.Name };
  }
  return undefined;
}

export const event = (type: string, display: string, extra: Record<string, unknown> = {}): Job => ({
  Type: type,
  Time: nowNs(),
  DisplayMessage: display,
  Details: {},
  Message: '',
  FailsTask: false,
  RestartReason: '',
  SetupError: '',
  DriverError: '',
  DriverMessage: '',
  ExitCode: 0,
  Signal: 0,
  KillReason: '',
  KillTimeout: 0,
  KillError: '',
  StartDelay: 0,
  ...extra,
});

export function startEvents(): Job[] {
  return [
    event('Received', 'Task received by client'),
    event('Task Setup', 'Building Task Directory', { Message: 'Building Task Directory' }),
    event('Started', 'Task started by client'),
  ];
}

/** The events of a task that exits 1 until its restart policy gives up (client/allocrunner/taskrunner/restarts). */
export function crashEvents(
  policy: Job,
  driverError?: string,
): { events: Job[]; restarts: number } {
  const events = startEvents().slice(0, 2);
  const attempts = policy.Attempts as number;
  for (let i = 0; i <= attempts; i++) {
    if (driverError) {
      events.push(
        event('Driver Failure', driverError, { DriverError: driverError, FailsTask: false }),
      );
    } else {
      events.push(event('Started', 'Task started by client'));
      const details = { exit_code: '1', signal: '0', oom_killed: 'false' };
      events.push(event('Terminated', 'Exit Code: 1', { ExitCode: 1, Details: details }));
    }
    if (i < attempts) {
      const delay = policy.Delay as number;
      const reason = 'Restart within policy';
      events.push(
        event('Restarting', `Task restarting in ${goDuration(delay)}`, {
          RestartReason: reason,
          StartDelay: delay,
        }),
      );
    }
  }
  const why = `Exceeded allowed attempts ${attempts} in interval ${goDuration(policy.Interval)} and mode is "fail"`;
  events.push(event('Not Restarting', why, { RestartReason: why, FailsTask: true }));
  return { events, restarts: attempts };
}
