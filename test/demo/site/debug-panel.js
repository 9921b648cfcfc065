/* Demo debug panel: shows what mod_ctflopt handed to the page and what the Web SDK holds.
 * Every global may be absent (module off, consent not granted, evaluation failed). */
(function (w, d) {
  function show(id, value) {
    var el = d.getElementById(id);
    if (el) el.textContent = value;
  }
  function fmt(v) {
    return v === undefined ? 'undefined' : JSON.stringify(v);
  }
  function cookie(name) {
    var parts = (d.cookie || '').split('; ');
    for (var i = 0; i < parts.length; i++) {
      if (parts[i].indexOf(name + '=') === 0) return parts[i].substring(name.length + 1);
    }
    return '(none)';
  }

  show('debug-consent', '__OPTIMIZATION_CONSENT__' in w ? fmt(w.__OPTIMIZATION_CONSENT__)
                                                        : '(no bootstrap on this page)');
  var data = w.__OPTIMIZATION_DATA__;
  show('debug-profile-id', data && data.profile ? data.profile.id : '(none)');
  show('debug-experiences', data && data.selectedOptimizations
    ? data.selectedOptimizations.map(function (s) {
        return s.experienceId + ':' + s.variantIndex;
      }).join(', ') || '(none)'
    : '(none)');
  show('debug-cookie', cookie('ctfl-opt-aid'));

  var sdk = w.contentfulOptimization;
  if (!sdk || !sdk.states) {
    show('debug-sdk-consent', '(no SDK instance)');
    show('debug-sdk-profile', '(no SDK instance)');
    return;
  }
  if (sdk.states.consent && sdk.states.consent.subscribe) {
    sdk.states.consent.subscribe(function (v) {
      show('debug-sdk-consent', fmt(v));
      show('debug-cookie', cookie('ctfl-opt-aid'));
    });
  }
  if (sdk.states.profile && sdk.states.profile.subscribe) {
    sdk.states.profile.subscribe(function (p) {
      show('debug-sdk-profile', p && p.id ? p.id : '(none)');
      show('debug-cookie', cookie('ctfl-opt-aid'));
    });
  }
})(window, document);
