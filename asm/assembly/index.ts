// The hub's preprocessing module: one wasm with the flow meter and the feature scaler.
// Memory: both sides allocate only through the AS heap (heap.alloc/realloc, stub runtime), never at fixed
// addresses. The flow meter (fm_*) takes its pool once at fm_init and its batch buffers at fm_reserve.
export * from './scale';
export * from './flowmeter';
