// A stem cell's warm-up action: the runner loads and runs it once, then forgets it, so that the
// code paths of init and run are already compiled when the stem cell's real action arrives.
// Never visible to an action.
function main(args) {
  return { warm: true, args };
}
exports.main = main;
