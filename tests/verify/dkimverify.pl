#!/usr/bin/perl
# dkimverify.pl - verify every DKIM signature of a message with Mail::DKIM
#
# usage: tests/verify/dkimverify.pl MESSAGE ZONEFILE
#
# An independent verifier for the tests: Perl's Mail::DKIM::Verifier, with
# the public keys answered from ZONEFILE (zone-file TXT records, e.g.
#   s1._domainkey.example.com. IN TXT ( "v=DKIM1; k=rsa; " "p=..." )
# ) instead of the network.  Prints one line per signature, in header order
# and numbered from 0 as tests/verify/dkimverify.py does:
#   sig N: d=DOMAIN s=SELECTOR a=ALGORITHM ok|FAIL [(detail)]
# and exits 0 only if there is at least one signature and all verify.
#
# Debian 12's Mail::DKIM cannot verify ed25519-sha256; run with PERL5LIB
# from tests/verify/fetch-mail-dkim to use the next release's, which can.

use strict;
use warnings;
use Mail::DKIM;
use Mail::DKIM::Verifier;
use Mail::DKIM::DNS;
use Net::DNS;
use Net::DNS::ZoneFile;

# ZoneResolver - a Net::DNS::Resolver stand-in answering from a zone file.
# Mail::DKIM::DNS::query() calls send() and errorstring() only.
package ZoneResolver;

# new - load every record of the zone file, keyed by lower-case name and type
# Zone-file syntax (Net::DNS::ZoneFile), plus "NAME<TAB>v=DKIM1; ..." lines
# (the RFC 8463 .tsv form), as tests/verify/dkimverify.py accepts.
sub new {
	my ($class, $file) = @_;
	my (%rrs, @rrs, $zone);
	open(my $fh, '<', $file) or die "dkimverify.pl: $file: $!\n";
	while (my $line = <$fh>) {
		if ($line =~ /^([^\s;"]+)\t(v=DKIM1.*?)\r?$/) {
			push @rrs, Net::DNS::RR->new(name => $1, type => 'TXT',
			    txtdata => [ unpack('(a255)*', $2) ]);
			next;
		}
		$zone .= $line;
	}
	close($fh);
	push @rrs, Net::DNS::ZoneFile->parse($zone // '');
	for my $rr (@rrs) {
		push @{ $rrs{ lc($rr->name) }{ uc($rr->type) } }, $rr;
	}
	return bless { rrs => \%rrs, error => 'NOERROR' }, $class;
}

# send - answer a query as a DNS server for the zone would
sub send {
	my ($self, $name, $type) = @_;
	$type = uc($type // 'A');
	(my $key = lc $name) =~ s/\.$//;
	my $packet = Net::DNS::Packet->new($name, $type, 'IN');
	$packet->header->qr(1);
	$packet->header->aa(1);
	if (!exists $self->{rrs}{$key}) {
		$packet->header->rcode('NXDOMAIN');
	} else {
		$packet->header->rcode('NOERROR');
		$packet->push(answer => @{ $self->{rrs}{$key}{$type} // [] });
	}
	$self->{error} = $packet->header->rcode;
	return $packet;
}

# errorstring - the outcome of the last query, as Net::DNS::Resolver has it
sub errorstring {
	return $_[0]->{error};
}

package main;

# read_message - the message with CRLF line ends, as Mail::DKIM expects
sub read_message {
	my ($file) = @_;
	open(my $fh, '<:raw', $file) or die "dkimverify.pl: $file: $!\n";
	local $/;
	my $text = <$fh>;
	close($fh);
	$text =~ s/\r?\n/\r\n/g;
	return $text;
}

if (@ARGV != 2) {
	print STDERR "usage: dkimverify.pl MESSAGE ZONEFILE\n";
	exit 2;
}
my ($msgfile, $zonefile) = @ARGV;
-r $zonefile or die "dkimverify.pl: $zonefile: cannot read\n";
Mail::DKIM::DNS::resolver(ZoneResolver->new($zonefile));

my $dkim = Mail::DKIM::Verifier->new();
$dkim->PRINT(read_message($msgfile));
$dkim->CLOSE();

my @sigs = grep { $_->isa('Mail::DKIM::Signature') } $dkim->signatures;
if (!@sigs) {
	print "no DKIM signatures (Mail::DKIM $Mail::DKIM::VERSION)\n";
	exit 1;
}
my $failed = 0;
my $n = -1;
for my $sig (@sigs) {
	$n++;
	my $result = $sig->result // 'none';
	my $ok = $result eq 'pass';
	my $line = sprintf("sig %d: d=%s s=%s a=%s %s", $n,
	    $sig->domain // '', $sig->selector // '', $sig->algorithm // '',
	    $ok ? 'ok' : 'FAIL');
	$line .= " ($result: " . ($sig->result_detail // '') . ")" if !$ok;
	print "$line\n";
	$failed++ if !$ok;
}
exit($failed ? 1 : 0);
