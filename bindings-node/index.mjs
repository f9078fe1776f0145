// ES module entry: the same native module as index.js, with named exports.
import { createRequire } from 'node:module'

const binding = createRequire(import.meta.url)('./index.js')

export const {
  Manager,
  LogStream,
  Process,
  detectHypervisor,
  getHypervisor,
  detectImageFormat,
  generateId,
  listTemplates,
  getTemplate,
  applyTemplate,
  applyVariables,
  extractVariables,
  hypervisorAvailable,
  hypervisorAccel,
  version,
  errorKinds,
  devenv,
} = binding

export default binding
