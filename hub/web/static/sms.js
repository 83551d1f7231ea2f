// The SMS template editor: count characters and parts while the admin types (the page's
// own figures, computed on the hub, are the authority; this only follows the typing).
(function () {
  "use strict";
  var GSM = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
  var EXT = "^{}\\[~]|€\f";
  function strip(text) {
    return text.replace(/đ/g, "d").replace(/Đ/g, "D").normalize("NFD").replace(/[\u0300-\u036f]/g, "");
  }
  function cost(text) {
    var n = 0, gsm = true;
    for (var i = 0; i < text.length; i++) {
      var ch = text[i];
      if (EXT.indexOf(ch) >= 0) { n += 2; } else if (GSM.indexOf(ch) >= 0) { n += 1; } else { gsm = false; }
    }
    if (!gsm) { n = text.length; }
    var single = gsm ? 160 : 70, multi = gsm ? 153 : 67;
    return {n: n, gsm: gsm, parts: n <= single ? 1 : Math.ceil(n / multi)};
  }
  document.querySelectorAll("form.sms-template").forEach(function (form) {
    var body = form.querySelector("textarea[name=body]");
    var uni = form.querySelector("input[name=unicode]");
    var out = form.querySelector(".sms-cost");
    var brand = form.getAttribute("data-brand");
    function update() {
      var text = (brand ? brand + ": " : "") + body.value.replace(/\{[a-z_]+\}/g, "xxxxxxxxxx");
      if (!uni.checked) { text = strip(text); }
      var c = cost(text);
      out.textContent = "khoảng " + c.n + " ký tự · " + (c.gsm ? "không dấu (GSM-7)" : "có dấu (UCS-2)") + " · " +
        c.parts + " tin (tham số tính 10 ký tự)";
    }
    body.addEventListener("input", update);
    uni.addEventListener("change", update);
  });
})();
