// Development only: lets a piscina pool started from the TypeScript sources (tests, tsx)
// run a TypeScript task module. Node 20 does not pass --import to worker threads, so the
// tsx loader is registered here, inside the pool's thread, before the task is imported.
import { register } from 'tsx/esm/api'
import { workerData } from 'piscina'

register()
const task = await import(workerData.taskModule)
export default task.default
