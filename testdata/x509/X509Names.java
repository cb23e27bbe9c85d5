// X509Names answers, as ZooKeeper's X509AuthenticationProvider would, what a
// certificate's x509 id is and whether a string is a valid x509 ACL id. Used
// by acl_x509_test.go to hold zoo's answers to Java's.
//
//   java X509Names.java subject CERT.pem...   prints getSubjectX500Principal().getName() per cert
//   java X509Names.java parse < lines         prints "ok" or "invalid" per line (new X500Principal)
import java.io.BufferedReader;
import java.io.FileInputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import javax.security.auth.x500.X500Principal;

public class X509Names {
    public static void main(String[] args) throws Exception {
        if (args.length > 0 && args[0].equals("subject")) {
            CertificateFactory f = CertificateFactory.getInstance("X.509");
            for (int i = 1; i < args.length; i++) {
                try (FileInputStream in = new FileInputStream(args[i])) {
                    X509Certificate c = (X509Certificate) f.generateCertificate(in);
                    System.out.println(c.getSubjectX500Principal().getName());
                }
            }
            return;
        }
        BufferedReader r = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        for (String line; (line = r.readLine()) != null; ) {
            try {
                new X500Principal(line);
                System.out.println("ok");
            } catch (IllegalArgumentException e) {
                System.out.println("invalid");
            }
        }
    }
}
